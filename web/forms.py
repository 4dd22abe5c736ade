"""Forms of the pages. They check shapes only; the services check the rules and raise domain errors."""

from __future__ import annotations

from typing import Any

from django import forms

from accounts.models import ALL_SCOPES, CREDENTIAL_FIELDS, CredentialKind, Role


class SignUpForm(forms.Form):
    email = forms.EmailField()
    password = forms.CharField(widget=forms.PasswordInput, min_length=8, max_length=128)
    team_name = forms.CharField(max_length=120, label="Team name", required=False,
                                help_text="Created once you confirm your address; leave empty to only join teams.")


class TeamForm(forms.Form):
    name = forms.CharField(max_length=120, label="Team name")


class MemberAddForm(forms.Form):
    """Adding a member sends an invitation; they join once they accept it with a verified address."""

    email = forms.EmailField()
    role = forms.ChoiceField(choices=Role.choices, initial=Role.EDITOR)


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


SECRET_LABELS = {"key": "API key", "token": "Bearer token", "username": "Username", "password": "Password",
                 "url": "Connection URL"}
PLAIN_SECRETS = {"username"}


def secret_field_kinds() -> dict[str, list[str]]:
    """Every secret field of ``CREDENTIAL_FIELDS`` with the kinds that use it (a new kind adds its fields)."""
    kinds: dict[str, list[str]] = {}
    for kind, names in CREDENTIAL_FIELDS.items():
        for name in names:
            kinds.setdefault(name, []).append(str(kind))
    return kinds


class CredentialForm(forms.Form):
    """The fields of every kind; the page shows only the selected kind's (``data-kinds``). Values typed
    are kept when the form comes back with an error; a stored secret is never rendered."""

    name = forms.CharField(max_length=120)
    kind = forms.ChoiceField(choices=CredentialKind.choices)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["kind"].widget.attrs["data-credential-kind"] = "1"
        for name, kinds in secret_field_kinds().items():
            attrs = {"data-kinds": " ".join(kinds), "autocomplete": "new-password" if name not in PLAIN_SECRETS else "off"}
            widget = forms.TextInput(attrs=attrs) if name in PLAIN_SECRETS else forms.PasswordInput(attrs=attrs, render_value=True)
            self.fields[name] = forms.CharField(required=False, widget=widget, label=SECRET_LABELS.get(name, name.replace("_", " ").capitalize()))

    def secrets(self) -> dict[str, str]:
        kind = self.cleaned_data.get("kind")
        names = CREDENTIAL_FIELDS.get(kind, ())
        return {k: self.cleaned_data[k] for k in names if self.cleaned_data.get(k)}


class AppForm(forms.Form):
    name = forms.CharField(max_length=120)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class WorkflowForm(forms.Form):
    name = forms.CharField(max_length=120)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
