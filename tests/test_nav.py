"""The bar of zmqfeed's own layout: who is logged in, log out, the admin for staff, log in."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

pytestmark = pytest.mark.django_db


def page(client) -> str:
    response = client.get(reverse("zmqfeed:feed_list"))
    assert response.status_code == 200
    return response.content.decode()


def test_a_user_sees_their_name_and_a_log_out_form_but_no_admin(client):
    client.force_login(User.objects.create_user("ann"))
    html = page(client)
    assert '<span class="zf-user">ann</span>' in html
    form = re.search(r'<form class="zf-logout" method="post" action="([^"]+)">(.*?)</form>', html)
    assert form and form[1] == reverse("zmqfeed:logout")
    assert 'name="csrfmiddlewaretoken"' in form[2] and 'name="next" value="/zmqfeed/"' in form[2]
    assert "zf-admin" not in html and "log in" not in html


def test_staff_get_the_admin_link(client):
    client.force_login(User.objects.create_user("sam", is_staff=True))
    assert f'<a class="zf-admin" href="{reverse("admin:index")}">admin</a>' in page(client)


def test_log_out_logs_out_and_returns_to_the_page(client):
    client.force_login(User.objects.create_user("ann"))
    response = client.post(reverse("zmqfeed:logout"), {"next": "/zmqfeed/"})
    assert response.status_code == 302 and response["Location"] == "/zmqfeed/"
    assert "log in" in page(client)


def test_without_the_admin_and_a_login_page_there_is_no_link(client, settings):
    settings.ROOT_URLCONF = "tests.sites.noadmin_urls"
    settings.LOGIN_URL = "/accounts/login/"  # Django's default: nothing there
    html = page(client)
    assert "log in" not in html and "anonymous" in html
    client.force_login(User.objects.create_user("sam", is_staff=True))
    html = page(client)
    assert "zf-admin" not in html and "zf-logout" in html  # no admin to send them to


def test_base_template_setting_puts_the_pages_in_the_sites_layout(client, settings, tmp_path):
    (tmp_path / "site.html").write_text(
        "<body class=site><title>{% block title %}{% endblock %}</title>{% block extra_head %}"
        "{% endblock %}<main class=zf>{% block content %}{% endblock %}</main>"
        "{% block scripts %}{% endblock %}</body>"
    )
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path]}]
    settings.ZMQFEED = {"BASE_TEMPLATE": "site.html"}
    html = page(client)
    assert html.startswith("<body class=site><title>Feeds</title>")
    assert "zmqfeed/zmqfeed.css" in html and "zf-bar" not in html
