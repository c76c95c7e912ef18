from django.urls import path

from . import views

app_name = "zmqfeed"

urlpatterns = [
    path("", views.feed_list, name="feed_list"),
    path("metrics", views.metrics, name="metrics"),
    path("healthz", views.healthz, name="healthz"),
    path("token", views.token, name="token"),
    path("<slug:feed>/", views.feed_detail, name="feed_detail"),
]
