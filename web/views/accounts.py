"""Sign up (creates a team), sign in and out, the team switcher, a new team."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.permissions import SESSION_TEAM_KEY, request_membership
from accounts.selectors import user_teams
from accounts.services import team_create, user_get_or_create
from config.errors import DomainError
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


def signup(request: HttpRequest) -> HttpResponse:
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        email = form.cleaned_data["email"].strip().lower()
        if User.objects.filter(username=email).exists():
            form.add_error("email", "An account with this email exists; sign in instead.")
        else:
            try:
                with transaction.atomic():
                    user, _ = user_get_or_create(email=email, password=form.cleaned_data["password"])
                    team = team_create(name=form.cleaned_data["team_name"], owner=user)
            except DomainError as exc:
                form_errors_add(form, exc, {"/name": "team_name", "/slug": "team_name"})
            else:
                login(request, user, backend="django.contrib.auth.backends.ModelBackend")
                request.session[SESSION_TEAM_KEY] = str(team.pk)
                messages.success(request, f"Welcome to Weft. Your team “{team.name}” is ready.")
                return redirect("web:apps")
    return render(request, "web/signup.html", {"form": form})


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
