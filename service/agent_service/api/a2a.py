"""A2A (Agent2Agent, protocol 0.3, JSON-RPC 2.0 binding) as LangGraph Platform serves it.

``POST /a2a/{assistant_id}`` answers ``message/send``, ``message/stream`` and ``tasks/resubscribe``
(SSE), ``tasks/get`` and ``tasks/cancel``; ``GET /.well-known/agent-card.json?assistant_id=...`` is
the assistant's agent card.
A context (``contextId``) is a thread, a task is a run on it: a message starts a run through the
run engine (queued, executed by any replica, counted in the run metrics and SLIs like any run), so
``tasks/get`` and ``tasks/cancel`` work on any replica. Task ids are run ids: a task is also
``GET /threads/{contextId}/runs/{taskId}``. The task's thread is found from its id alone through a
small index key (``a2a-task``) kept as long as the run's record. A graph that interrupts makes its
task ``input-required``; a message to that task resumes the thread (``Command(resume=...)``) in a
new run, which the index then points at: the task keeps its id across its runs.

Same auth, rate limits and tenants as the API (401 without a token when auth is on; another
tenant's assistants, contexts and tasks do not exist). Bad input is a JSON-RPC error with its code
(-32700 parse, -32600 request, -32601 method, -32602 params naming the field, -32001 task not found,
-32002 not cancelable, -32003 push notifications, -32004 unsupported, -32005 content type; -32000
a spent budget: a message is admitted against the spend budgets and counted in the usage like a
run) and HTTP 200, as JSON-RPC over HTTP answers; never a 5xx.

Why no ``a2a-sdk`` on the server side: its 1.x server is an ``AgentExecutor`` writing to an
in-process event queue and a task store of its own (memory or SQL), which would duplicate the run
engine and its Redis records and tie a task to the replica that took it; it also adds protobuf
types, google-api-core, json-rpc and culsans to the image, which is already over its size goal
(BENCHMARKS.md). The 0.3 JSON-RPC surface is small, so it is these pydantic models; ``a2a-sdk``
is a dev dependency only, for the tests' client (its 1.x client speaks 0.3 to a 0.3 card).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from agent_service.api.assistants import resolve_assistant
from agent_service.api.deps import RuntimeDep, current_tenant
from agent_service.api.runs import start_run
from agent_service.api.schemas import Json, RunCreate
from agent_service.api.usage import spend_gate
from agent_service.llm.errors import BudgetExceededError
from agent_service.runs import events
from agent_service.runtime import Runtime
from agent_service.serialization import now_iso
from agent_service.state.runs import TERMINAL_STATUSES, RunNotFoundError

router = APIRouter(tags=["a2a"])

PROTOCOL_VERSION = "0.3.0"
#: Key on a run record (in memory only) naming the A2A task it resumed.
A2A_TASK = "a2a_task"
MODES = ["text/plain", "application/json"]
#: Messages of the context a task shows at most (``historyLength`` asks for fewer).
MAX_HISTORY = 100

PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS = -32700, -32600, -32601, -32602
BUDGET_SPENT = -32000  # JSON-RPC's implementation-defined server error
TASK_NOT_FOUND, TASK_NOT_CANCELABLE, PUSH_NOT_SUPPORTED, UNSUPPORTED, CONTENT_TYPE = (
    -32001,
    -32002,
    -32003,
    -32004,
    -32005,
)

#: Run status -> A2A task state (a finished run that stopped at an interrupt: ``input-required``).
STATES = {
    "pending": "submitted",
    "running": "working",
    "success": "completed",
    "error": "failed",
    "timeout": "failed",
    "interrupted": "canceled",
}


class RpcError(Exception):
    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code, self.message, self.data = code, message, data

    def body(self, request_id: str | int | None) -> dict[str, Any]:
        error = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return {"jsonrpc": "2.0", "id": request_id, "error": error}


# -- the protocol's types (what this server reads; camelCase on the wire) -------------------------


class _A2A(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class TextPart(_A2A):
    kind: Literal["text"]
    text: str


class DataPart(_A2A):
    kind: Literal["data"]
    data: Json


class FilePart(_A2A):
    kind: Literal["file"]
    file: Json


class Message(_A2A):
    kind: Literal["message"] = "message"
    message_id: str = Field(min_length=1, max_length=256)
    role: Literal["user", "agent"]
    parts: list[Annotated[TextPart | DataPart | FilePart, Field(discriminator="kind")]] = Field(
        min_length=1, max_length=1000
    )
    context_id: str | None = Field(default=None, min_length=1, max_length=256)
    task_id: str | None = Field(default=None, min_length=1, max_length=256)
    metadata: Json | None = None


class SendConfiguration(_A2A):
    blocking: bool | None = None
    history_length: int | None = Field(default=None, ge=0, le=MAX_HISTORY)
    accepted_output_modes: list[str] | None = None
    push_notification_config: Json | None = None


class MessageSendParams(_A2A):
    message: Message
    configuration: SendConfiguration | None = None
    metadata: Json | None = None


class TaskQueryParams(_A2A):
    id: str = Field(min_length=1, max_length=256)
    history_length: int | None = Field(default=None, ge=0, le=MAX_HISTORY)


class TaskIdParams(_A2A):
    id: str = Field(min_length=1, max_length=256)


class JsonRpcRequest(BaseModel):
    """The request envelope; ``method``: message/send, message/stream, tasks/get or tasks/cancel."""

    jsonrpc: Literal["2.0"]
    id: str | int | None = None
    method: str = Field(min_length=1, max_length=256)
    params: dict[str, Any] | None = None


def _params(model: type[_A2A], params: dict[str, Any] | None) -> Any:
    try:
        return model.model_validate(params or {})
    except ValidationError as error:
        fields = [
            {"field": "params." + ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
            for e in error.errors(include_url=False, include_input=False)
        ]
        where = ", ".join(f["field"] for f in fields)
        raise RpcError(INVALID_PARAMS, f"invalid params: {where}", fields) from None


# -- between A2A messages and graph input/output ------------------------------------------------


def graph_input(message: Message, input_schema: dict[str, Any]) -> dict[str, Any]:
    """Text parts become messages (the graph's ``messages``), data parts the other input keys."""
    texts, data = [], {}
    for part in message.parts:
        if isinstance(part, FilePart):
            raise RpcError(CONTENT_TYPE, "file parts are not supported; send text or data parts")
        if isinstance(part, TextPart):
            texts.append(part.text)
        else:
            data.update(part.data)
    if texts and "messages" not in (input_schema.get("properties") or {}):
        raise RpcError(
            INVALID_PARAMS,
            "params.message.parts: this assistant's graph takes no messages; send a data part",
            [{"field": "params.message.parts", "message": "text parts need a graph with 'messages'"}],
        )
    role = "user" if message.role == "user" else "assistant"
    return {**data, **({"messages": [{"role": role, "content": t} for t in texts]} if texts else {})}


def text_of(message: Any) -> str:
    """A LangChain message's text (string content, or the text of its content blocks)."""
    content = message.get("content", "") if isinstance(message, dict) else message
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(b if isinstance(b, str) else str(b.get("text", "")) for b in content)
    return orjson.dumps(content).decode()


def _a2a_message(role: str, text: str, task_id: str, context_id: str) -> dict[str, Any]:
    return {
        "kind": "message",
        "role": role,
        "messageId": str(uuid.uuid4()),
        "parts": [{"kind": "text", "text": text}],
        "taskId": task_id,
        "contextId": context_id,
    }


def _messages(values: Any) -> list[dict[str, Any]]:
    found = values.get("messages") if isinstance(values, dict) else None
    return [m for m in found if isinstance(m, dict)] if isinstance(found, list) else []


def _reply(values: Any) -> str:
    """What the agent answered: its last AI message, else the output itself as JSON."""
    for message in reversed(_messages(values)):
        if message.get("type") in ("ai", "AIMessage", "AIMessageChunk") or message.get("role") == "assistant":
            return text_of(message)
    return orjson.dumps(values).decode()


def task_id_of(record: dict[str, Any]) -> str:
    """The A2A task a run belongs to: its own id, or the task it resumed (``A2A_TASK``)."""
    return record.get(A2A_TASK) or record["run_id"]


def resume_value(message: Message) -> Any:
    """What a message answers to an interrupt: its text, or its data when it has no text."""
    texts = [p.text for p in message.parts if isinstance(p, TextPart)]
    if texts:
        return "\n".join(texts)
    data: dict[str, Any] = {}
    for part in message.parts:
        if isinstance(part, DataPart):
            data.update(part.data)
    return data


def task(record: dict[str, Any], values: Any, history_length: int | None) -> dict[str, Any]:
    """The A2A task of a run: its state, the agent's reply (status message and artifact) once it has
    finished, and the context's latest messages."""
    task_id, context_id = task_id_of(record), record["thread_id"]
    state = STATES[record["status"]]
    shown: dict[str, Any] = {"state": state, "timestamp": record.get("updated_at") or now_iso()}
    artifacts = []
    error = record.get("error") or (values.get("__error__") if isinstance(values, dict) else None)
    if error:
        shown = {**shown, "state": "failed"}
        shown["message"] = _a2a_message(
            "agent", f"{error.get('error')}: {error.get('message')}", task_id, context_id
        )
    elif state == "completed" and isinstance(values, dict) and values.get("__interrupt__"):
        shown["state"] = "input-required"  # the graph asks: its interrupts are the question
        question = orjson.dumps(values["__interrupt__"]).decode()
        shown["message"] = _a2a_message("agent", question, task_id, context_id)
    elif state == "completed":
        shown["message"] = _a2a_message("agent", _reply(values), task_id, context_id)
        artifacts = [
            {"artifactId": task_id, "name": "Assistant Response", "parts": shown["message"]["parts"]}
        ]
    limit = MAX_HISTORY if history_length is None else history_length
    history = [
        _a2a_message("user" if m.get("type") == "human" else "agent", text_of(m), task_id, context_id)
        for m in (_messages(values)[-limit:] if limit else [])
    ]
    return {
        "kind": "task",
        "id": task_id,
        "contextId": context_id,
        "status": shown,
        "history": history,
        **({"artifacts": artifacts} if artifacts else {}),
        "metadata": {"assistant_id": record["assistant_id"]},
    }


# -- the methods ------------------------------------------------------------------------------


class Tasks:
    """Tasks as runs: started, found by id, read and cancelled through the run engine."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.engine = runtime.engine

    def _index(self, task_id: str) -> str:
        return self.engine.keys.control("a2a-task", task_id)

    async def start(
        self, request: Request, assistant: dict[str, Any], params: MessageSendParams, *, stream: bool
    ) -> dict[str, Any]:
        message = params.message
        context_id, run_input, resume = message.context_id, None, None
        if message.task_id is not None:
            context_id = await self._asking(message)
            resume = {"resume": resume_value(message)}
        else:
            graph = self.runtime.graphs[assistant["graph_id"]]
            run_input = graph_input(message, graph.get_input_jsonschema())
        try:
            body = RunCreate(
                assistant_id=assistant["assistant_id"],
                input=run_input,
                command=resume,
                metadata={"a2a_message_id": message.message_id, **(params.metadata or {})},
                stream_mode=["messages-tuple", "values"] if stream else "values",
                multitask_strategy="enqueue",  # messages on one context wait for each other
                if_not_exists="create",
                on_completion="keep",  # the context goes on: its next message sees this one
            )
        except ValidationError as error:
            raise RpcError(INVALID_PARAMS, f"params.message: {error.errors()[0]['msg']}") from None
        gate = spend_gate(request.app)
        try:
            await gate.admit(current_tenant())
        except BudgetExceededError as refusal:
            raise RpcError(BUDGET_SPENT, f"refused: {refusal}") from None
        try:
            record = await start_run(self.runtime, request, context_id, body)
        except HTTPException as error:  # a contextId that is another tenant's, or refused by auth
            raise RpcError(INVALID_PARAMS, f"params.message.contextId: {error.detail}") from None
        except RequestValidationError as error:
            raise RpcError(INVALID_PARAMS, str(error.errors()[0]["msg"])) from None
        if message.task_id is not None:
            record = {**record, A2A_TASK: message.task_id}
        await self._remember(record)
        await gate.usage.count_run(current_tenant())
        return record

    async def _asking(self, message: Message) -> str:
        """The context of the task ``message`` answers, which must be waiting for input."""
        asked = await self.show(await self.find(message.task_id), 0)
        if asked["status"]["state"] != "input-required":
            state = asked["status"]["state"]
            raise RpcError(
                UNSUPPORTED,
                f"task {message.task_id} is {state}: only an input-required task takes a message; "
                "start a new task on its contextId",
                {"id": message.task_id},
            )
        if message.context_id not in (None, asked["contextId"]):
            raise RpcError(
                INVALID_PARAMS,
                f"params.message.contextId: task {message.task_id} is in context {asked['contextId']}",
            )
        return asked["contextId"]

    async def _remember(self, record: dict[str, Any]) -> None:
        """Index the task: its id -> its context and its latest run, kept as long as the record."""
        where = f"{record['thread_id']} {record['run_id']}"
        await self.engine.client.set(
            self._index(task_id_of(record)), where, ex=self.engine.record_ttl(record)
        )

    async def find(self, task_id: str) -> dict[str, Any]:
        """The latest run of the caller's task ``task_id`` (TaskNotFound otherwise)."""
        where = await self.engine.client.get(self._index(task_id))
        try:
            if where is None:
                raise RunNotFoundError(task_id)
            thread_id, _, run_id = where.decode().partition(" ")
            record = await self.engine.get(thread_id, run_id or task_id)
        except RunNotFoundError:
            raise RpcError(TASK_NOT_FOUND, f"task {task_id} not found", {"id": task_id}) from None
        if record.get("tenant") != current_tenant():
            raise RpcError(TASK_NOT_FOUND, f"task {task_id} not found", {"id": task_id})
        return {**record, A2A_TASK: task_id}

    async def _reread(self, record: dict[str, Any]) -> dict[str, Any]:
        """The run's record as it is now, still as part of its task."""
        now = await self.engine.get(record["thread_id"], record["run_id"])
        return {**now, A2A_TASK: task_id_of(record)}

    async def show(self, record: dict[str, Any], history_length: int | None) -> dict[str, Any]:
        values = await self.engine.result(record) if record["status"] in TERMINAL_STATUSES else None
        return task(record, values, history_length)

    async def send(self, request: Request, assistant: dict[str, Any], params: MessageSendParams) -> dict:
        record = await self.start(request, assistant, params, stream=False)
        configuration = params.configuration or SendConfiguration()
        if configuration.blocking is not False:
            await self.engine.wait(record["thread_id"], record["run_id"])
            record = await self._reread(record)
        return await self.show(record, configuration.history_length)

    async def get(self, params: TaskQueryParams) -> dict[str, Any]:
        return await self.show(await self.find(params.id), params.history_length)

    async def cancel(self, params: TaskIdParams) -> dict[str, Any]:
        record = await self.find(params.id)
        if record["status"] in TERMINAL_STATUSES:
            state = STATES[record["status"]]
            raise RpcError(TASK_NOT_CANCELABLE, f"task {params.id} is {state}", {"id": params.id})
        await self.engine.cancel(record["thread_id"], record["run_id"], "interrupt", wait=True)
        return await self.show(await self._reread(record), None)

    async def resubscribe(self, params: TaskIdParams) -> dict[str, Any]:
        """A task still going, to stream again (from any replica: its events are in Redis)."""
        record = await self.find(params.id)
        if record["status"] in TERMINAL_STATUSES:  # as a2a-sdk's server: nothing more will come
            state = STATES[record["status"]]
            message = f"task {params.id} is {state}: read it with tasks/get"
            raise RpcError(UNSUPPORTED, message, {"id": params.id})
        return record

    async def stream(self, record: dict[str, Any], request_id: str | int | None) -> AsyncIterator[bytes]:
        """The task, ``working``, the reply's chunks as artifact updates, then the final status.

        The chunks come from the run's event log from its start, so a resubscription gets what it
        missed, then what follows."""
        task_id, context_id, run_id = task_id_of(record), record["thread_id"], record["run_id"]

        def event(result: dict[str, Any]) -> bytes:
            return b"data: %s\n\n" % orjson.dumps({"jsonrpc": "2.0", "id": request_id, "result": result})

        def status(state: dict[str, Any], final: bool) -> bytes:
            update = {"kind": "status-update", "taskId": task_id, "contextId": context_id}
            return event({**update, "status": state, "final": final})

        yield event(task(record, None, 0))
        yield status({"state": "working", "timestamp": now_iso()}, False)
        chunks = 0
        async for item in self.engine.follow(context_id, run_id, 0):
            if item is None:
                yield b": heartbeat\n\n"
            elif isinstance(item, events.End):
                break
            elif item.name == "messages" and (text := _chunk_text(item.data)):
                artifact = {"artifactId": task_id, "name": "Assistant Response"}
                artifact["parts"] = [{"kind": "text", "text": text}]
                update = {"kind": "artifact-update", "taskId": task_id, "contextId": context_id}
                yield event({**update, "artifact": artifact, "append": chunks > 0, "lastChunk": False})
                chunks += 1
        ended = await self.show(await self._reread(record), 0)
        if not chunks and ended.get("artifacts"):  # a graph whose nodes return whole messages
            update = {"kind": "artifact-update", "taskId": task_id, "contextId": context_id}
            yield event({**update, "artifact": ended["artifacts"][0], "append": False, "lastChunk": True})
        yield status(ended["status"], True)


def _chunk_text(data: bytes) -> str:
    """The text of an AI message chunk from a ``messages`` event (``[message, metadata]``)."""
    message, _ = orjson.loads(data)
    if not isinstance(message, dict) or message.get("type") not in ("ai", "AIMessageChunk"):
        return ""
    return text_of(message)


_METHODS = {
    "message/send": MessageSendParams,
    "message/stream": MessageSendParams,
    "tasks/get": TaskQueryParams,
    "tasks/cancel": TaskIdParams,
    "tasks/resubscribe": TaskIdParams,
}
_UNSUPPORTED = {"agent/getAuthenticatedExtendedCard"}


def _envelope(raw: bytes) -> JsonRpcRequest:
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise RpcError(PARSE_ERROR, "the body is not JSON") from None
    if not isinstance(parsed, dict):
        raise RpcError(INVALID_REQUEST, "the body must be one JSON-RPC request object (no batches)")
    try:
        return JsonRpcRequest.model_validate(parsed)
    except ValidationError as error:
        where = ", ".join(".".join(str(p) for p in e["loc"]) for e in error.errors())
        raise RpcError(INVALID_REQUEST, f"not a JSON-RPC 2.0 request: {where}") from None


async def _dispatch(
    runtime: Runtime, request: Request, assistant_id: str, call: JsonRpcRequest
) -> dict[str, Any] | StreamingResponse:
    if call.method.startswith("tasks/pushNotificationConfig/"):
        raise RpcError(PUSH_NOT_SUPPORTED, "push notifications are not supported")
    if call.method in _UNSUPPORTED:
        raise RpcError(UNSUPPORTED, f"{call.method} is not supported")
    if call.method not in _METHODS:
        raise RpcError(METHOD_NOT_FOUND, f"unknown method {call.method!r}; methods: {', '.join(_METHODS)}")
    params = _params(_METHODS[call.method], call.params)
    try:
        assistant = await resolve_assistant(runtime, assistant_id)
    except HTTPException as error:
        raise RpcError(INVALID_PARAMS, str(error.detail), {"assistant_id": assistant_id}) from None
    tasks = Tasks(runtime)
    if call.method == "message/send":
        return await tasks.send(request, assistant, params)
    if call.method in ("message/stream", "tasks/resubscribe"):
        if call.method == "message/stream":
            record = await tasks.start(request, assistant, params, stream=True)
        else:
            record = await tasks.resubscribe(params)
        return StreamingResponse(
            tasks.stream(record, call.id),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store"},
        )
    if call.method == "tasks/get":
        return await tasks.get(params)
    return await tasks.cancel(params)


@router.post(
    "/a2a/{assistant_id}",
    response_model=None,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": JsonRpcRequest.model_json_schema()}},
        }
    },
)
async def a2a_rpc(assistant_id: str, request: Request, runtime: RuntimeDep) -> Response:
    """A2A JSON-RPC 2.0: message/send, message/stream and tasks/resubscribe (SSE), tasks/get, tasks/cancel."""
    request_id: str | int | None = None
    try:
        call = _envelope(await request.body())
        request_id = call.id
        answer = await _dispatch(runtime, request, assistant_id, call)
    except RpcError as error:
        return JSONResponse(error.body(request_id))
    if isinstance(answer, StreamingResponse):
        return answer
    return JSONResponse({"jsonrpc": "2.0", "id": request_id, "result": answer})


@router.get("/.well-known/agent-card.json")
async def agent_card(
    request: Request, runtime: RuntimeDep, assistant_id: Annotated[str, Query(min_length=1, max_length=256)]
) -> dict[str, Any]:
    """The assistant's A2A agent card (404 for an assistant the caller does not have)."""
    assistant = await resolve_assistant(runtime, assistant_id)
    name = assistant.get("name") or assistant["graph_id"]
    description = assistant.get("description") or f"The {assistant['graph_id']} agent."
    card: dict[str, Any] = {
        "protocolVersion": PROTOCOL_VERSION,
        "name": name,
        "description": description,
        "url": f"{str(request.base_url).rstrip('/')}/a2a/{assistant['assistant_id']}",
        "preferredTransport": "JSONRPC",
        "version": str(assistant.get("version") or 1),
        "capabilities": {"streaming": True, "pushNotifications": False, "stateTransitionHistory": False},
        "defaultInputModes": MODES,
        "defaultOutputModes": MODES,
        "skills": [
            {
                "id": f"{assistant['graph_id']}-main",
                "name": name,
                "description": description,
                "tags": ["assistant", assistant["graph_id"]],
                "inputModes": MODES,
                "outputModes": MODES,
            }
        ],
    }
    if runtime.settings.auth_enabled:
        card["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}
        card["security"] = [{"bearer": []}]
    return card
