"""Sign up (verified by a mailed link, then the team is created), confirming an address, accepting
an invitation, the team switcher, a new team. Sign-up answers the same page whether or not the
address has an account (docs/accounts.md)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from accounts.invitations import (
    email_verified,
    email_verify,
    invitation_accept,
    invitation_by_token,
    signup_start,
    verification_read,
    verification_send,
)
from accounts.permissions import SESSION_TEAM_KEY, request_membership
from accounts.selectors import user_teams
from accounts.services import team_create
from accounts.throttle import login_locked
from config.errors import DomainError, NotFound
from web.forms import SignUpForm, TeamForm


def form_errors_add(form: object, exc: DomainError, field_by_path: dict[str, str] | None = None) -> None:
    """Put a service's ``errors`` (JSON paths) on the form fields they name, else on the form."""
    mapping = field_by_path or {}
    if not exc.errors:
        form.add_error(None, exc.detail)  # type: ignore[attr-defined]
    for error in exc.errors:
        field = mapping.get(error["path"])
        form.add_error(field, f"{exc.detail} ({error['message']})" if field is None else error["message"])  # type: ignore[attr-defined]


def home(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect("web:login")
    if request_membership(request) is None:
        return redirect("web:team-new")
    return redirect("web:apps")


class LoginView(auth_views.LoginView):
    """Django's sign-in page; past the sign-in throttle (accounts.throttle) a 429 saying when to retry."""

    template_name = "web/login.html"
    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        wait = login_locked(request, request.POST.get("username", ""))
        if wait:
            # An unbound form: validating it would try the password (and count another failure).
            form = self.get_form_class()(request)
            locked = (f"Too many failed sign-ins. Try again in {max(1, wait // 60)} minute(s), "
                      "or reset your password.")
            response = self.render_to_response(self.get_context_data(form=form, locked=locked), status=429)
            response["Retry-After"] = str(wait)
            return response
        return super().post(request, *args, **kwargs)


def safe_next(request: HttpRequest, value: str) -> str:
    """``value`` when it is a path on this site, else ''."""
    if value and url_has_allowed_host_and_scheme(value, allowed_hosts={request.get_host()},
                                                 require_https=request.is_secure()):
        return value
    return ""


def signup(request: HttpRequest) -> HttpResponse:
    form = SignUpForm(request.POST or None, initial={"email": request.GET.get("email", "")})
    next_url = safe_next(request, request.POST.get("next") or request.GET.get("next", ""))
    if request.method == "POST" and form.is_valid():
        signup_start(email=form.cleaned_data["email"], password=form.cleaned_data["password"],
                     team_name=form.cleaned_data["team_name"], next_url=next_url)
        # The same answer whether or not the address already has an account.
        return render(request, "web/signup_sent.html", {"email": form.cleaned_data["email"].strip().lower()})
    return render(request, "web/signup.html", {"form": form, "next": next_url})


def verify(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows a confirm button (mail scanners follow links); POST confirms and signs in."""
    try:
        data = verification_read(token)
    except NotFound as exc:
        return render(request, "web/link_invalid.html", {"detail": exc.detail}, status=404)
    if request.method != "POST":
        return render(request, "web/verify.html", {"email": data["user"].email})
    user, team, next_url = email_verify(token=token)
    login(request, user, backend="accounts.throttle.ThrottledModelBackend")
    if team is not None:
        request.session[SESSION_TEAM_KEY] = str(team.pk)
        messages.success(request, f"Address confirmed. Welcome to Weft: your team “{team.name}” is ready.")
    else:
        messages.success(request, "Address confirmed.")
    return redirect(safe_next(request, next_url) or "web:home")


@login_required
@require_POST
def verify_resend(request: HttpRequest) -> HttpResponse:
    if not email_verified(request.user):
        verification_send(user=request.user, next_url=safe_next(request, request.POST.get("next", "")))
    messages.success(request, f"We sent a confirmation link to {request.user.email}.")
    return redirect(safe_next(request, request.POST.get("next", "")) or "web:home")


def invitation(request: HttpRequest, token: str) -> HttpResponse:
    """An invitation link: GET shows what it is and what to do; POST accepts it."""
    try:
        pending = invitation_by_token(token)
    except NotFound as exc:
        return render(request, "web/link_invalid.html", {"detail": exc.detail}, status=404)
    context = {"invitation": pending, "next": request.path}
    user = request.user
    if user.is_authenticated:
        context["matches"] = (user.email or user.username).lower() == pending.email
        context["verified"] = email_verified(user)
    if request.method == "POST":
        if not user.is_authenticated:
            raise Http404
        try:
            membership = invitation_accept(token=token, user=user)
        except DomainError as exc:
            messages.error(request, exc.detail)
            return redirect(request.path)
        request.session[SESSION_TEAM_KEY] = str(membership.team_id)
        messages.success(request, f"You joined {membership.team.name} as {membership.role}.")
        return redirect("web:apps")
    return render(request, "web/invitation.html", context)


@login_required
def team_new(request: HttpRequest) -> HttpResponse:
    form = TeamForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            team = team_create(name=form.cleaned_data["name"], owner=request.user)
        except DomainError as exc:
            form_errors_add(form, exc, {"/name": "name", "/slug": "name"})
        else:
            request.session[SESSION_TEAM_KEY] = str(team.pk)
            return redirect("web:apps")
    return render(request, "web/team_new.html", {"form": form})


@login_required
@require_POST
def team_switch(request: HttpRequest) -> HttpResponse:
    team_id = request.POST.get("team", "")
    if user_teams(user=request.user).filter(team_id=team_id).exists() if team_id else False:
        request.session[SESSION_TEAM_KEY] = team_id
    else:
        messages.error(request, "You are not a member of that team.")
    return redirect("web:apps")
