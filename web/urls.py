"""Web UI routes (mounted last at the site root)."""

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.urls import path, re_path

from web.views import accounts, durable, runs, static, team, workflows

app_name = "web"

urlpatterns = [
    path("", accounts.home, name="home"),
    path("login/", accounts.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(next_page="/login/"), name="logout"),
    path("signup/", accounts.signup, name="signup"),
    path("verify/resend/", accounts.verify_resend, name="verify-resend"),
    path("verify/<str:token>/", accounts.verify, name="verify"),
    path("invitations/<str:token>/", accounts.invitation, name="invitation"),
    path("password/reset/", auth_views.PasswordResetView.as_view(
        template_name="web/password_reset.html", email_template_name="web/mail/password_reset.txt",
        subject_template_name="web/mail/password_reset_subject.txt", success_url="/password/reset/sent/",
        extra_email_context={"public_url": settings.WEFT_PUBLIC_URL}),  # never the request's Host
        name="password-reset"),
    path("password/reset/sent/", auth_views.PasswordResetDoneView.as_view(template_name="web/password_reset_sent.html"),
         name="password-reset-sent"),
    path("password/reset/<uidb64>/<token>/", auth_views.PasswordResetConfirmView.as_view(
        template_name="web/password_reset_confirm.html", success_url="/login/", post_reset_login=False),
        name="password-reset-confirm"),
    path("teams/new/", accounts.team_new, name="team-new"),
    path("teams/switch/", accounts.team_switch, name="team-switch"),
    path("settings/members/", team.members, name="members"),
    path("settings/members/<str:member_id>/role/", team.member_role, name="member-role"),
    path("settings/members/<str:member_id>/remove/", team.member_remove, name="member-remove"),
    path("settings/invitations/<str:invitation_id>/revoke/", team.invitation_revoke, name="invitation-revoke"),
    path("settings/tokens/", team.tokens, name="tokens"),
    path("settings/tokens/<str:token_id>/revoke/", team.token_revoke, name="token-revoke"),
    path("settings/webhook-secret/rotate/", team.webhook_secret_rotate, name="webhook-secret-rotate"),
    path("settings/credentials/", team.credentials, name="credentials"),
    path("settings/credentials/<str:credential_id>/", team.credential_edit, name="credential-edit"),
    path("settings/parameters/", team.parameters, name="parameters"),
    path("apps/", workflows.apps, name="apps"),
    path("apps/<str:app_id>/", workflows.app_detail, name="app"),
    path("apps/<str:app_id>/call/", workflows.app_call, name="app-call"),
    path("apps/<str:app_id>/delete/", workflows.app_delete, name="app-delete"),
    path("workflows/<str:workflow_id>/", workflows.workflow_editor, name="workflow"),
    path("workflows/<str:workflow_id>/draft", workflows.workflow_draft, name="workflow-draft"),
    path("workflows/<str:workflow_id>/delete/", workflows.workflow_delete, name="workflow-delete"),
    path("workflows/<str:workflow_id>/validate", workflows.workflow_validate, name="workflow-validate"),
    path("workflows/<str:workflow_id>/publish", workflows.workflow_publish, name="workflow-publish"),
    path("workflows/<str:workflow_id>/run", workflows.workflow_run, name="workflow-run"),
    path("workflows/<str:workflow_id>/run-node", workflows.workflow_run_node, name="workflow-run-node"),
    path("workflows/<str:workflow_id>/versions/", workflows.workflow_versions, name="workflow-versions"),
    path("workflows/<str:workflow_id>/versions/<int:number>/activate", workflows.version_activate,
         name="workflow-version-activate"),
    path("workflows/<str:workflow_id>/versions/<int:number>/restore", workflows.version_restore,
         name="workflow-version-restore"),
    path("workflows/<str:workflow_id>/triggers/", durable.triggers, name="triggers"),
    path("triggers/<str:trigger_id>/", durable.trigger_action, name="trigger-action"),
    path("dead-letters/", durable.dead_letters, name="dead-letters"),
    path("batches/", durable.batches, name="batches"),
    path("runs/", runs.runs, name="runs"),
    path("runs/<str:run_id>/", runs.run_detail, name="run"),
    path("runs/<str:run_id>/stop", runs.run_stop_view, name="run-stop"),
    path("runs/<str:run_id>/replay", runs.run_replay_view, name="run-replay"),
    re_path(r"^static/(?P<path>.+)$", static.static_file, name="static"),
]
