"""Team settings pages: members and roles, API tokens and the webhook signing secret, credentials,
global parameters."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from accounts import invitations as accounts_invitations
from accounts import selectors as accounts_selectors
from accounts import services as accounts_services
from accounts.connections import credential_test
from config.errors import DomainError
from runs.signing import team_webhook_secret
from web.access import Access, page, team_action, team_view
from web.forms import CredentialForm, MemberAddForm, MemberRoleForm, TokenForm, secret_field_kinds
from web.views.accounts import form_errors_add
from workflows import services as workflows_services
from workflows.selectors import app_get, app_list


@team_view(write="admin")
def members(request: HttpRequest, access: Access) -> HttpResponse:
    form = MemberAddForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            accounts_invitations.invitation_create(
                team=access.team, email=form.cleaned_data["email"], role=form.cleaned_data["role"],
                invited_by=request.user, actor_role=access.role,
            )
        except DomainError as exc:
            form_errors_add(form, exc, {"/email": "email", "/role": "role"})
        else:
            messages.success(request, f"Invitation sent to {form.cleaned_data['email']} ({form.cleaned_data['role']}).")
            return redirect("web:members")
    rows = accounts_selectors.member_list(team=access.team)
    return page(request, access, "web/members.html", {
        "form": form, "members": rows, "role_form": MemberRoleForm(),
        "invitations": accounts_selectors.invitation_list(team=access.team) if access.can_admin else [],
    })


@team_action("admin")
def invitation_revoke(request: HttpRequest, access: Access, invitation_id: str) -> HttpResponse:
    invitation = accounts_selectors.invitation_get(team=access.team, id=invitation_id)
    accounts_invitations.invitation_revoke(team=access.team, invitation=invitation)
    messages.success(request, f"Invitation of {invitation.email} revoked.")
    return redirect("web:members")


@team_action("admin")
def member_role(request: HttpRequest, access: Access, member_id: str) -> HttpResponse:
    membership = accounts_selectors.member_get(team=access.team, id=member_id)
    form = MemberRoleForm(request.POST)
    if form.is_valid():
        try:
            accounts_services.membership_update(team=access.team, membership=membership, role=form.cleaned_data["role"],
                                                actor_role=access.role)
            messages.success(request, f"{membership.user.email} is now {form.cleaned_data['role']}.")
        except DomainError as exc:
            messages.error(request, exc.detail)
    return redirect("web:members")


@team_action("admin")
def member_remove(request: HttpRequest, access: Access, member_id: str) -> HttpResponse:
    membership = accounts_selectors.member_get(team=access.team, id=member_id)
    try:
        accounts_services.membership_remove(team=access.team, membership=membership, actor_role=access.role)
        messages.success(request, f"{membership.user.email} removed.")
    except DomainError as exc:
        messages.error(request, exc.detail)
    return redirect("web:members")


TOKEN_SECRET_KEY = "weft_new_token_secret"


@team_view(write="admin")
def tokens(request: HttpRequest, access: Access) -> HttpResponse:
    app_choices = [(str(a.pk), a.name) for a in app_list(team=access.team)]
    form = TokenForm(request.POST or None, apps=app_choices)
    secret = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            app = app_get(team=access.team, id=data["app"]) if data["app"] else None
            token, secret = accounts_services.token_create(
                team=access.team, name=data["name"], scopes=data["scopes"], app=app, expires_at=data["expires_at"],
                created_by=request.user, grantor_scopes=access.scopes,
            )
        except DomainError as exc:
            form_errors_add(form, exc, {"/name": "name", "/scopes": "scopes", "/appId": "app", "/expiresAt": "expires_at"})
        else:
            # Post/redirect/get: a reload of the page that shows the secret creates nothing. The
            # secret crosses the redirect in the session once (popped by the next GET), never logged.
            request.session[TOKEN_SECRET_KEY] = secret
            messages.success(request, f"Token “{token.name}” created. Copy the secret now: it is shown only once.")
            return redirect("web:tokens")
    if request.method == "GET":
        secret = request.session.pop(TOKEN_SECRET_KEY, None)
    rows = accounts_selectors.token_list(team=access.team)
    webhook_secret = team_webhook_secret(access.team) if access.can_admin else None
    return page(request, access, "web/tokens.html", {"form": form, "tokens": rows, "secret": secret,
                                                     "webhook_secret": webhook_secret})


@team_action("admin")
def webhook_secret_rotate(request: HttpRequest, access: Access) -> HttpResponse:
    accounts_services.team_webhook_secret_rotate(team=access.team)
    messages.success(request, "Webhook signing secret rotated: give the new one to your callback receivers.")
    return redirect("web:tokens")


@team_action("admin")
def token_revoke(request: HttpRequest, access: Access, token_id: str) -> HttpResponse:
    token = accounts_selectors.token_get(team=access.team, id=token_id)
    accounts_services.token_revoke(team=access.team, token=token)
    messages.success(request, f"Token “{token.name}” revoked.")
    return redirect("web:tokens")


@team_view()
def credentials(request: HttpRequest, access: Access) -> HttpResponse:
    form = CredentialForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            accounts_services.credential_create(team=access.team, name=form.cleaned_data["name"],
                                                kind=form.cleaned_data["kind"], secrets=form.secrets())
        except DomainError as exc:
            form_errors_add(form, exc, {"/name": "name", "/kind": "kind",
                                        **{f"/secrets/{n}": n for n in secret_field_kinds()}})
        else:
            messages.success(request, f"Credential “{form.cleaned_data['name']}” saved.")
            return redirect("web:credentials")
    rows = [(c, accounts_selectors.credential_fields(c), CredentialForm(initial={"name": c.name, "kind": c.kind},
                                                                         auto_id=f"c{c.pk.hex[:8]}_%s"))
            for c in accounts_selectors.credential_list(team=access.team)]
    return page(request, access, "web/credentials.html", {"form": form, "credentials": rows},
                status=400 if request.method == "POST" else 200)


@team_action("manage")
def credential_edit(request: HttpRequest, access: Access, credential_id: str) -> HttpResponse:
    """Replace a credential's secrets (never shown) or delete it."""
    credential = accounts_selectors.credential_get(team=access.team, id=credential_id)
    if request.POST.get("action") == "delete":
        try:
            workflows_services.credential_remove(team=access.team, credential=credential)
        except DomainError as exc:
            messages.error(request, exc.detail)
        else:
            messages.success(request, f"Credential “{credential.name}” deleted.")
        return redirect("web:credentials")
    if request.POST.get("action") == "test":
        try:
            result = credential_test(team=access.team, credential=credential)
        except DomainError as exc:
            messages.error(request, exc.detail)
        else:
            if result["ok"]:
                messages.success(request, f"Credential “{credential.name}”: connected.")
            else:
                messages.error(request, f"Credential “{credential.name}”: {result['error']['code']}: "
                                        f"{result['error']['message']}")
        return redirect("web:credentials")
    form = CredentialForm(request.POST)
    if form.is_valid():
        try:
            workflows_services.credential_change(team=access.team, credential=credential, name=form.cleaned_data["name"],
                                                kind=form.cleaned_data["kind"], secrets=form.secrets())
            messages.success(request, f"Credential “{credential.name}” updated.")
        except DomainError as exc:
            messages.error(request, "; ".join([exc.detail] + [f"{e['path']}: {e['message']}" for e in exc.errors]))
    else:
        messages.error(request, "Invalid credential form.")
    return redirect("web:credentials")


@team_view()
def parameters(request: HttpRequest, access: Access) -> HttpResponse:
    errors: list[dict[str, str]] = []
    if request.method == "POST":
        names = request.POST.getlist("name")
        values_ = request.POST.getlist("value")
        values = {n.strip(): v for n, v in zip(names, values_, strict=False) if n.strip()}
        try:
            accounts_services.parameters_replace(team=access.team, values=values)
        except DomainError as exc:
            errors = exc.errors
            current = values
        else:
            messages.success(request, "Global parameters saved.")
            return redirect("web:parameters")
    else:
        current = accounts_selectors.parameters_get(team=access.team)
    by_name = {e["path"][1:]: e["message"] for e in errors if e.get("path", "").startswith("/")}
    rows = [(name, value, by_name.get(name)) for name, value in [*current.items(), ("", "")]]
    status = 400 if errors else 200
    return page(request, access, "web/parameters.html", {"rows": rows, "errors": errors}, status=status)
