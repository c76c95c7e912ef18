from django.urls import path

from . import sse, views

app_name = "zmqfeed"

urlpatterns = [
    path("", views.feed_list, name="feed_list"),
    path("metrics", views.metrics, name="metrics"),
    path("healthz", views.healthz, name="healthz"),
    path("token", views.token, name="token"),
    path("logout", views.logout, name="logout"),
    path("sse/", sse.stream, name="sse"),
    path("sse/<slug:feed>/<slug:topic>/", sse.stream, name="sse_topic"),
    # Before <feed>/: "status" is a reserved feed slug.
    path("status/", views.status_page, name="status"),
    path("status.json", views.status_json, name="status_json"),
    path("<slug:feed>/", views.feed_detail, name="feed_detail"),
]
