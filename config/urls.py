"""URL configuration: the management and native APIs, the Dify-style and Coze-style dialects,
the OpenAPI schema and docs (assets served locally), and the web UI. Django's admin site only with
``WEFT_ADMIN_ENABLED``."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

urlpatterns = [
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    # Run routes first: "api/v1/workflows/run" must win over "api/v1/workflows/<workflow_id>".
    path("", include("runs.urls")),
    path("api/v1/", include("accounts.urls")),
    path("api/v1/", include("workflows.urls")),
    path("api/v1/", include("runs.ws_ticket_urls")),
    path("", include("workflows.demo.urls")),
    path("", include("web.urls")),
]

if settings.WEFT_ADMIN_ENABLED:
    urlpatterns.insert(0, path("admin/", admin.site.urls))
