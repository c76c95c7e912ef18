"""The site's own WebSocket route, beside zmqfeed's: echoes what it gets, with the user."""

from channels.generic.websocket import AsyncJsonWebsocketConsumer


class EchoConsumer(AsyncJsonWebsocketConsumer):
    async def receive_json(self, content, **kwargs):
        user = self.scope["user"]
        await self.send_json({"echo": content, "user": user.get_username() or None})
