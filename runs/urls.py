"""Run API routes: native (/api/v1/), Dify-style (/v1/) and Coze-style (root)."""

from django.urls import path, re_path

from runs import apis, durable_apis
from runs.dialects import coze, dify
from workflows import trigger_apis

urlpatterns = [
    path("api/v1/workflows/run", apis.RunStartApi.as_view(), name="runs-start"),
    path("api/v1/runs", apis.RunListApi.as_view(), name="runs-list"),
    path("api/v1/runs/<str:run_id>", apis.RunDetailApi.as_view(), name="runs-detail"),
    path("api/v1/runs/<str:run_id>/stop", apis.RunStopApi.as_view(), name="runs-stop"),
    path("api/v1/runs/<str:run_id>/replay", apis.RunReplayApi.as_view(), name="runs-replay"),
    path("api/v1/runs/<str:run_id>/events", apis.RunEventsApi.as_view(), name="runs-events"),
    path("api/v1/callbacks/<str:run_id>/<str:node_id>/<str:receipt_token>", apis.CallbackApi.as_view(),
         name="callbacks-receive"),
    path("api/v1/workflows/<str:workflow_id>/trigger", apis.WorkflowTriggerApi.as_view(), name="workflows-trigger"),
    # Dify-style (/v1/): literal paths before the ones with a parameter in the same place.
    path("v1/workflows/run", dify.DifyWorkflowRunApi.as_view(), name="dify-run"),
    path("v1/workflows/logs", dify.DifyWorkflowLogsApi.as_view(), name="dify-logs"),
    path("v1/workflows/run/<str:workflow_run_id>", dify.DifyWorkflowRunDetailApi.as_view(), name="dify-run-detail"),
    path("v1/workflows/tasks/<str:task_id>/stop", dify.DifyTaskStopApi.as_view(), name="dify-task-stop"),
    path("v1/workflows/<str:task_id>/stop", dify.DifyTaskStopLegacyApi.as_view(), name="dify-stop"),
    path("v1/workflows/<str:workflow_id>/run", dify.DifyWorkflowRunVersionApi.as_view(), name="dify-run-version"),
    path("v1/parameters", dify.DifyParametersApi.as_view(), name="dify-parameters"),
    path("v1/info", dify.DifyInfoApi.as_view(), name="dify-info"),
    path("v1/meta", dify.DifyMetaApi.as_view(), name="dify-meta"),
    path("v1/files/upload", dify.DifyFileUploadApi.as_view(), name="dify-files-upload"),
    path("v1/site", dify.DifySiteApi.as_view(), name="dify-site"),
    # Last of /v1/: every other path is Dify's JSON 404, never an HTML page.
    re_path(r"^v1/(?P<path>.*)$", dify.NOT_FOUND_VIEW.as_view(), name="dify-not-found"),
    # Coze-style (deployment root).
    path("run", coze.CozeRunApi.as_view(), name="coze-run"),
    path("stream_run", coze.CozeStreamRunApi.as_view(), name="coze-stream-run"),
    path("run/stream", coze.CozeRunStreamApi.as_view(), name="coze-run-stream"),
    path("async_run", coze.CozeAsyncRunApi.as_view(), name="coze-async-run"),
    path("task/<str:task_id>", coze.CozeTaskApi.as_view(), name="coze-task"),
    path("graph_parameter", coze.CozeGraphParameterApi.as_view(), name="coze-graph-parameter"),
    path("cancel/<str:run_id>", coze.CozeCancelApi.as_view(), name="coze-cancel"),
    path("health", coze.CozeHealthApi.as_view(), name="coze-health"),
    path("api/v1/offline/submit", durable_apis.BatchSubmitApi.as_view(), name="offline-submit"),
    path("api/v1/offline/jobs/<str:job_id>", durable_apis.BatchJobApi.as_view(), name="offline-job"),
    path("api/v1/offline/jobs/<str:job_id>/result.csv", durable_apis.BatchResultApi.as_view(), name="offline-job-result"),
    path("api/v1/dead-letters", durable_apis.DeadLetterListApi.as_view(), name="dead-letters"),
    path("api/v1/dead-letters/<str:dead_letter_id>/replay", durable_apis.DeadLetterReplayApi.as_view(),
         name="dead-letter-replay"),
    path("hooks/<str:trigger_key>", trigger_apis.HookApi.as_view(), name="hooks-receive"),
]
