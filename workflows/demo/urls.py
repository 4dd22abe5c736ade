"""Routes of the demo endpoints (see workflows.demo.views)."""

from django.urls import path

from workflows.demo import views

urlpatterns = [
    path("demo/risk", views.demo_risk, name="demo-risk"),
    path("demo/email", views.demo_email, name="demo-email"),
]
