"""No HTTP views: the naive gateway only serves WebSockets."""

urlpatterns: list = []
