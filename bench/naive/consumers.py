"""The consumer of the tutorials: join the topic's group, send each event as one JSON frame."""

import json

from channels.generic.websocket import AsyncWebsocketConsumer


class FeedConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        self.group_name = f"feed.{self.scope['url_route']['kwargs']['topic']}"
        await self.channel_layer.group_add(self.group_name, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        await self.channel_layer.group_discard(self.group_name, self.channel_name)

    async def feed_message(self, event):
        await self.send(text_data=json.dumps(event["message"]))
