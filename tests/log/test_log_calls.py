"""Every log line in src/kittiwake is a constant message plus fields, through the project's logger.

An AST walk over the source finds logging calls whose message is built from
values (f-string, ``%``, ``.format``, concatenation, a variable) or written
as logfmt by hand (``"x=..."``), stdlib loggers used directly, and logger
names that ``[log] packages`` / ``kittiwake loglevels`` could not address.
The log package itself (the machinery: setup, transcripts) is exempt.
"""

from __future__ import annotations

import ast
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "kittiwake"
LOG_PACKAGE = SRC / "log"

LOG_METHODS = frozenset({"debug", "info", "warn", "warning", "error", "exception", "critical",
                         "fatal", "log", "trace", "traceauth", "tracedata"})
# Calls that make a logger from a name; their results are loggers.
LOGGER_FACTORIES = frozenset({"get_logger", "getLogger", "with_fields", "Logger"})
# Calls whose ``msg`` argument becomes a log message: name -> position of msg.
MESSAGE_ARGS = {"panic": 2, "guard": 1}
# A message that carries its values by hand: key=value, %-placeholders, {}-templates.
HAND_MADE = re.compile(r"=|%[-#0 +]*\d*(?:\.\d+)?[sdifrxXeEgGc]|\{[^}]*\}")

# (file relative to src/kittiwake, function) -> why a non-constant message is right there.
ALLOWED_MESSAGE = {
    ("metrics.py", "panic"): "passes on the msg of its callers, which this test checks"
                             " (MESSAGE_ARGS)",
    ("metrics.py", "guard"): "passes its callers' msg on to panic(), checked the same way",
}
# (file, function) -> why get_logger takes a variable there.
ALLOWED_LOGGER_NAME = {
    ("metrics.py", "panic"): "logs to the package that caught the exception (its origin)",
}


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    problem: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.problem}"


def _dotted(node: ast.AST) -> str:
    """``self.logger`` for an Attribute chain of Names, else ``""``."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else ""
    return ""


def _callee(call: ast.Call) -> str:
    """The last name of what is called: ``get_logger`` for ``log.get_logger(...)``."""
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return ""


def _is_logger_factory(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and _callee(node) in LOGGER_FACTORIES


class _Checker(ast.NodeVisitor):
    def __init__(self, rel: str) -> None:
        self.rel = rel
        self.findings: list[Finding] = []
        self.loggers: set[str] = set()  # dotted names bound to a logger in this module
        self.function: list[str] = []

    # -- what is a logger ------------------------------------------------------

    def collect(self, tree: ast.AST) -> None:
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None \
                    and _is_logger_factory(node.value):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if name := _dotted(target):
                        self.loggers.add(name)

    def _is_logger(self, node: ast.AST) -> bool:
        if _is_logger_factory(node):
            return True
        name = _dotted(node)
        if not name:
            return False
        last = name.rsplit(".", 1)[-1]
        if name == "log":
            return False  # ``from kittiwake import log``: the package, not a logger
        return name in self.loggers or last in ("logger", "_logger", "log", "_log")

    # -- the checks ------------------------------------------------------------

    def _add(self, node: ast.AST, problem: str) -> None:
        self.findings.append(Finding(self.rel, getattr(node, "lineno", 0), problem))

    def _where(self) -> tuple[str, str]:
        return self.rel, self.function[-1] if self.function else ""

    def _check_message(self, call: ast.Call, msg: ast.expr | None, what: str) -> None:
        if msg is None:
            return
        if isinstance(msg, ast.Constant) and isinstance(msg.value, str):
            if HAND_MADE.search(msg.value):
                self._add(call, f"{what}: message {msg.value!r} carries values by hand;"
                                " pass them as fields")
            return
        if self._where() in ALLOWED_MESSAGE:
            return
        kind = {ast.JoinedStr: "an f-string", ast.BinOp: "% formatting or concatenation",
                ast.Call: "a call (.format, str(), ...)"}.get(type(msg), "not a constant")
        self._add(call, f"{what}: message is {kind}; use a constant message and fields")

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.function.append(node.name)
        self.generic_visit(node)
        self.function.pop()

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module == "logging" and any(a.name == "getLogger" for a in node.names):
            self._add(node, "stdlib getLogger imported; use kittiwake.log.get_logger")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        callee = _callee(node)
        if isinstance(func, ast.Attribute) and _dotted(func.value) == "logging":
            if func.attr == "getLogger":
                self._add(node, "logging.getLogger(...); use kittiwake.log.get_logger(pkg)")
            elif func.attr in LOG_METHODS:
                self._add(node, f"logging.{func.attr}(...) writes to the root logger;"
                                " use kittiwake.log.get_logger(pkg)")
        elif isinstance(func, ast.Attribute) and func.attr in LOG_METHODS \
                and self._is_logger(func.value):
            args = node.args
            position = 1 if func.attr == "log" else 0
            what = f"{_dotted(func) or '...' + func.attr}()"
            if len(args) > position + 1:
                self._add(node, f"{what}: positional arguments after the message are"
                                " %-formatting; pass fields")
            self._check_message(node, args[position] if len(args) > position else None, what)
        elif callee in MESSAGE_ARGS:
            position = MESSAGE_ARGS[callee]
            msg = next((k.value for k in node.keywords if k.arg == "msg"), None)
            if msg is None and len(node.args) > position:
                msg = node.args[position]
            self._check_message(node, msg, f"{callee}()")
        if callee == "get_logger":
            self._check_logger_name(node)
        self.generic_visit(node)

    def _check_logger_name(self, call: ast.Call) -> None:
        name = call.args[0] if call.args else None
        if isinstance(name, ast.Constant) and isinstance(name.value, str):
            full = name.value if name.value.startswith("kittiwake") else f"kittiwake.{name.value}"
            if "." in name.value or importlib.util.find_spec(full) is None:
                self._add(call, f"get_logger({name.value!r}): not a kittiwake package name,"
                                " so `kittiwake loglevels` cannot set its level")
        elif self._where() not in ALLOWED_LOGGER_NAME:
            self._add(call, "get_logger(...) of a variable; name the package")


def check_source(source: str, rel: str = "example.py") -> list[Finding]:
    """The logging problems in one module's source."""
    tree = ast.parse(source)
    checker = _Checker(rel)
    checker.collect(tree)
    checker.visit(tree)
    return checker.findings


def check_tree(root: Path = SRC) -> list[Finding]:
    """The logging problems in every module of ``root`` outside the log package."""
    out: list[Finding] = []
    for path in sorted(root.rglob("*.py")):
        if LOG_PACKAGE in path.parents:
            continue
        out += check_source(path.read_text(encoding="utf-8"), str(path.relative_to(root)))
    return out


def test_every_log_call_is_a_constant_message_with_fields() -> None:
    findings = check_tree()
    assert not findings, "\n".join(map(str, findings))


def test_the_allow_lists_name_places_that_exist() -> None:
    """An entry whose place is gone would excuse whatever lands there next."""
    for rel, function in {**ALLOWED_MESSAGE, **ALLOWED_LOGGER_NAME}:
        source = (SRC / rel).read_text(encoding="utf-8")
        assert re.search(rf"^\s*(async\s+)?def {function}\(", source, re.M), (rel, function)


@pytest.mark.parametrize("source", [
    'logger = get_logger("queue")\nlogger.info(f"delivered {mid}")\n',
    'logger = get_logger("queue")\nlogger.info("delivered %s" % mid)\n',
    'logger = get_logger("queue")\nlogger.info("delivered %s", mid)\n',
    'logger = get_logger("queue")\nlogger.info("delivered {}".format(mid))\n',
    'logger = get_logger("queue")\nlogger.info("delivered " + mid)\n',
    'logger = get_logger("queue")\nlogger.info(text)\n',
    'logger = get_logger("queue")\nlogger.info("queue delivery message=1 domain=x")\n',
    'logger = get_logger("queue")\nlogger.warning("cannot read %s")\n',
    'class C:\n    def f(self):\n        self.logger.error(f"x {self}")\n',
    'startup = log.get_logger("server")\nstartup.warning(warning.off, where=w)\n',
    'get_logger("smtpserver").debug("refused " + ip)\n',
    'logger.log(TRACE, f"C: {line}")\n',
    'import logging\nlogger = logging.getLogger("kittiwake.queue")\n',
    'import logging\nlog = logging.getLogger(__name__)\n',
    'from logging import getLogger\n',
    'import logging\nlogging.warning("x")\n',
    'logger = get_logger("control")\n',
    'logger = get_logger("kittiwake.queue.direct")\n',
    'logger = get_logger(__name__)\n',
    'metrics.panic("queue", exc, msg=f"failed {x}")\n',
    'panic("queue", exc, "failed " + x)\n',
    'with guard("queue", f"task {name}"):\n    pass\n',
])
def test_checker_finds_the_bad_kinds(source: str) -> None:
    assert check_source(source), source


@pytest.mark.parametrize("source", [
    'logger = get_logger("queue")\nlogger.info("delivered", message=mid, domain=d)\n',
    'logger = get_logger("queue")\nlogger.log(TRACE, "delivered", message=mid)\n',
    'logger = get_logger("queue")\nlogger.warning("failed", exc_info=True, error=exc)\n',
    'class C:\n    def f(self):\n        self.logger.info("connection", port=25)\n',
    'log.setup("info", {"smtpserver": "trace"})\n',
    'panic("queue", exc)\nmetrics.panic("smtpserver", exc, msg="queueing failed")\n',
    'parser.error(f"not a logger {x}")\n',
])
def test_checker_accepts_fields(source: str) -> None:
    assert check_source(source) == []
