"""Route of the websocket ticket endpoint (mounted at ``/api/v1/``)."""

from django.urls import path

from runs.ws_tickets import WsTicketApi

urlpatterns = [path("ws-tickets", WsTicketApi.as_view(), name="ws-tickets")]
