"""Pages and probes. Placeholder views until the live page lands."""

from django.http import HttpResponse


def feed_list(request):
    return HttpResponse("feeds")


def feed_detail(request, feed):
    return HttpResponse(feed)


def metrics(request):
    return HttpResponse("")


def healthz(request):
    return HttpResponse("ok")
