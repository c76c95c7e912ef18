from django.contrib.auth.views import LoginView
from django.urls import include, path
from django.views.generic import TemplateView

urlpatterns = [
    path("", TemplateView.as_view(template_name="othersite/ticker.html"), name="ticker"),
    path("signin/", LoginView.as_view(template_name="othersite/signin.html"), name="signin"),
    path("streams/", include("zmqfeed.urls")),
]
