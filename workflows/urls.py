"""Management API routes for apps, workflows and versions (mounted at ``/api/v1/``).

Ids use the ``objid`` converter (registered in ``accounts.urls``): any run of hex digits and
dashes, so a malformed id still reaches the selector and is answered like a missing one (a
problem+json 404), while words such as ``/api/v1/workflows/run`` (a run route) never match.
"""

from django.urls import path

import accounts.urls  # noqa: F401  (registers the "objid" path converter)
from workflows import apis, trigger_apis

urlpatterns = [
    path("apps", apis.AppListApi.as_view(), name="apps"),
    path("apps/<objid:app_id>", apis.AppDetailApi.as_view(), name="app"),
    path("apps/<objid:app_id>/workflows", apis.WorkflowListApi.as_view(), name="app-workflows"),
    path("workflows/<objid:workflow_id>", apis.WorkflowDetailApi.as_view(), name="workflow"),
    path("workflows/<objid:workflow_id>/validate", apis.WorkflowValidateApi.as_view(), name="workflow-validate"),
    path("workflows/<objid:workflow_id>/publish", apis.WorkflowPublishApi.as_view(), name="workflow-publish"),
    path("workflows/<objid:workflow_id>/versions", apis.VersionListApi.as_view(), name="workflow-versions"),
    path("workflows/<objid:workflow_id>/versions/<int:number>", apis.VersionDetailApi.as_view(), name="workflow-version"),
    path("workflows/<objid:workflow_id>/versions/<int:number>/activate", apis.VersionActivateApi.as_view(),
         name="workflow-version-activate"),
    path("workflows/<objid:workflow_id>/triggers", trigger_apis.TriggerListApi.as_view(), name="workflow-triggers"),
    path("triggers/<objid:trigger_id>", trigger_apis.TriggerDetailApi.as_view(), name="trigger"),
    path("triggers/<objid:trigger_id>/dead-letters", trigger_apis.TriggerDeadLetterListApi.as_view(),
         name="trigger-dead-letters"),
]
