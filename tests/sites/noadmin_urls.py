"""zmqfeed mounted on a site without the admin (tests/test_nav.py)."""

from django.urls import include, path

urlpatterns = [path("zmqfeed/", include("zmqfeed.urls"))]
