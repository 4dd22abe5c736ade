"""Forms of the pages. They check shapes only; the services check the rules and raise domain errors."""

from __future__ import annotations

from django import forms

from accounts.models import ALL_SCOPES, CredentialKind, Role


class SignUpForm(forms.Form):
    email = forms.EmailField()
    password = forms.CharField(widget=forms.PasswordInput, min_length=8)
    team_name = forms.CharField(max_length=120, label="Team name")


class TeamForm(forms.Form):
    name = forms.CharField(max_length=120, label="Team name")


class MemberAddForm(forms.Form):
    email = forms.EmailField()
    role = forms.ChoiceField(choices=Role.choices, initial=Role.EDITOR)
    password = forms.CharField(widget=forms.PasswordInput, required=False, min_length=8,
                               help_text="Only for a new account; an existing account keeps its password.")


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class TokenForm(forms.Form):
    name = forms.CharField(max_length=120)
    scopes = forms.MultipleChoiceField(choices=[(s, s) for s in ALL_SCOPES], widget=forms.CheckboxSelectMultiple,
                                       initial=["run"])
    app = forms.ChoiceField(required=False, label="Bound to app", help_text="Optional: the token may only run this app.")
    expires_at = forms.DateTimeField(required=False, label="Expires at (UTC)",
                                     widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))

    def __init__(self, *args: object, apps: list[tuple[str, str]] | None = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["app"].choices = [("", "— any app —"), *(apps or [])]


class CredentialForm(forms.Form):
    """Secret fields are write-only: rendered empty, never filled back."""

    name = forms.CharField(max_length=120)
    kind = forms.ChoiceField(choices=CredentialKind.choices)
    key = forms.CharField(required=False, widget=forms.PasswordInput, label="API key")
    token = forms.CharField(required=False, widget=forms.PasswordInput, label="Bearer token")
    username = forms.CharField(required=False, label="Username (basic)")
    password = forms.CharField(required=False, widget=forms.PasswordInput, label="Password (basic)")

    def secrets(self) -> dict[str, str]:
        return {k: self.cleaned_data[k] for k in ("key", "token", "username", "password") if self.cleaned_data.get(k)}


class AppForm(forms.Form):
    name = forms.CharField(max_length=120)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class WorkflowForm(forms.Form):
    name = forms.CharField(max_length=120)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
