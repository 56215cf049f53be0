# -*- test-case-name: tests.test_config -*-
"""
KrakenD v3 configuration: a JSON (or YAML) file to frozen dataclasses, with every validation rule.

L{load_config} reads a file and returns a L{ServiceConfig}, or raises L{ConfigError} carrying
every problem found (file, JSON path, why), never just the first. L{parse_config} does the same
for an already decoded document. Pure: no Twisted, no sockets.

The rules are KrakenD CE's (see C{../shared/docs/krakend-behaviour.md}, sections 1 to 5) plus
the validation of shadowtwist's own C{shadowgw} and C{shadowgw/shadow} namespaces.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Callable, Mapping, Optional, Sequence

from shadowtwist.compare import validate_pointer_pattern
from shadowtwist.durations import parse_duration
from shadowtwist.manipulate import validate_flatmap
from shadowtwist.sampling import parse_sticky_key

DEFAULT_TIMEOUT = 2.0
DEFAULT_PORT = 8080
REGISTERED_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
UNSAFE_METHODS = ("POST", "PUT", "PATCH", "DELETE")

# Namespaces shadowtwist implements; any other extra_config key is a KrakenD plugin or an
# enterprise feature we accept and ignore, with one warning at start.
IMPLEMENTED_NAMESPACES = frozenset(
    {"proxy", "backend/http", "router", "shadowgw", "shadowgw/shadow"}
)
NAMESPACE_ALIASES = {
    "github.com/devopsfaith/krakend/proxy": "proxy",
    "github.com/devopsfaith/krakend/http": "backend/http",
    "github_com/luraproject/lura/router/gin": "router",
    "github_com/devopsfaith/krakend/router/gin": "router",
}

_INVALID_ENDPOINT = re.compile(r"^[^/]|\*.|/__(debug|echo|health)(/.*)?$")
_REST_PARAM = re.compile(r"/\{([a-zA-Z\-_0-9]+)\}")
_ANY_PARAM = re.compile(r"\{([\w\-.:/]+)\}")
_PATTERN_PARAM = re.compile(r"\{([\w\-.:/]+)\}")
_SPECIAL_PLACEHOLDER = re.compile(r"^(resp\d+_.+)?(JWT\.[\w\-.:/]+)?$")
_HOST = re.compile(r"(https?://)?([a-zA-Z0-9._-]+)(:[0-9]{2,6})?/?")


@dataclass(frozen=True)
class Problem:
    """
    One thing wrong with a configuration file.

    @ivar file: the file name as given.
    @ivar path: the JSON path of the offending value, e.g. C{endpoints[3].backend[0].url_pattern}.
    @ivar message: why it is wrong.
    """

    file: str
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.path}" if self.path else self.file
        return f"{where}: {self.message}"


class ConfigError(Exception):
    """
    A configuration that cannot be served.

    @ivar problems: every L{Problem} found, in file order.
    """

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(frozen=True)
class HeaderRules:
    """
    How a shadow request's headers differ from the primary's.

    @ivar set: headers set (replacing any value) on the shadow request.
    @ivar remove: header names removed from the shadow request (case-insensitive).
    """

    set: Mapping[str, str] = field(default_factory=lambda: {"X-Shadow-Request": "1"})
    remove: tuple = ()


@dataclass(frozen=True)
class CompareOptions:
    """
    What a shadow's answer is compared with, and how (C{shadowgw/shadow.compare}).
    """

    status: bool = True
    body: bool = True
    headers: tuple = ()
    ignore: tuple = ()
    against: Optional[int] = None
    learn_noise: float = 0.0


@dataclass(frozen=True)
class AutoPauseOptions:
    """
    Pause a failing shadow (C{shadowgw/shadow.auto_pause}).
    """

    error_rate: float
    window: float
    min_requests: int


@dataclass(frozen=True)
class ShadowOptions:
    """
    shadowtwist's shadow settings for one shadow backend (C{extra_config["shadowgw/shadow"]}).

    The defaults are what a bare KrakenD C{proxy.shadow: true} backend gets.
    """

    percentage: float = 100.0
    sticky_key: Optional[str] = None
    start: str = "parallel"
    methods: tuple = SAFE_METHODS
    allow_unsafe: bool = False
    max_in_flight: int = 64
    max_body_bytes: int = 65536
    on_body_overflow: str = "skip"
    headers: HeaderRules = field(default_factory=HeaderRules)
    compare: CompareOptions = field(default_factory=CompareOptions)
    capture: int = 50
    auto_pause: Optional[AutoPauseOptions] = None


@dataclass(frozen=True)
class BackendConfig:
    """
    One backend of an endpoint, with KrakenD's defaults applied.

    @ivar index: position in the endpoint's C{backend} list.
    @ivar hosts: sanitized hosts (scheme, host and port), each an equal share of the calls.
    @ivar url_pattern: the path (and optional query) with C{{param}} placeholders.
    @ivar input_headers: second-level header filter, or C{None} when not set.
    @ivar input_query_strings: second-level query filter, or C{None} when not set.
    @ivar shadow: whether this is a shadow backend (C{proxy.shadow} is the JSON C{true}).
    @ivar shadow_timeout: the C{proxy.shadow_timeout}, in seconds, or C{None}.
    @ivar shadow_options: shadowtwist's shadow settings (defaults when not configured).
    """

    index: int
    hosts: tuple
    url_pattern: str
    method: str
    encoding: str = "json"
    is_collection: bool = False
    group: str = ""
    target: str = ""
    allow: tuple = ()
    deny: tuple = ()
    mapping: Mapping[str, str] = field(default_factory=dict)
    flatmap: Optional[tuple] = None
    input_headers: Optional[tuple] = None
    input_query_strings: Optional[tuple] = None
    shadow: bool = False
    shadow_timeout: Optional[float] = None
    shadow_options: ShadowOptions = field(default_factory=ShadowOptions)
    return_error_details: str = ""
    return_error_code: bool = False
    extra_config: Mapping[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """
        A short, bounded name for logs and metrics: the first host and the URL pattern.
        """
        host = self.hosts[0] if self.hosts else ""
        return f"{host}{self.url_pattern}"


@dataclass(frozen=True)
class StaticResponse:
    """
    KrakenD's C{proxy.static}: data merged over the response when the strategy matches.

    @ivar strategy: C{always}, C{success}, C{complete}, C{errored} or C{incomplete}.
    """

    strategy: str
    data: Mapping[str, Any]


STATIC_STRATEGIES = ("always", "success", "complete", "errored", "incomplete")
# Endpoint output_encoding values KrakenD CE knows, and those naming one of its renderers.
OUTPUT_ENCODINGS = ("json", "json-collection", "string", "xml", "yaml", "negotiate", "no-op", "fast-json")
RENDERERS = ("json", "json-collection", "string", "xml", "yaml", "negotiate", "no-op")


@dataclass(frozen=True)
class EndpointConfig:
    """
    One endpoint object: one path template and one method.

    @ivar params: the names of the C{{param}} segments, in path order.
    """

    path: str
    method: str
    backends: tuple
    timeout: float
    cache_ttl: float
    output_encoding: str
    concurrent_calls: int = 1
    input_headers: tuple = ()
    input_query_strings: tuple = ()
    params: tuple = ()
    sequential: bool = False
    static: Optional[StaticResponse] = None
    flatmap: Optional[tuple] = None
    extra_config: Mapping[str, Any] = field(default_factory=dict)

    @cached_property
    def primaries(self) -> tuple:
        """
        The backends whose answers make the client's response.
        """
        return tuple(b for b in self.backends if not b.shadow)

    @cached_property
    def shadows(self) -> tuple:
        """
        The shadow backends: sent a copy, never part of the response.
        """
        return tuple(b for b in self.backends if b.shadow)

    @cached_property
    def name(self) -> str:
        """
        The bounded label of this endpoint: C{"GET /user/{id}"}.
        """
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class RouterOptions:
    """
    The C{extra_config.router} options (KrakenD section 7.4).
    """

    return_error_msg: bool = False
    health_path: str = "/__health"
    disable_health: bool = False
    auto_options: bool = False
    hide_version_header: bool = False
    disable_redirect_trailing_slash: bool = False
    disable_redirect_fixed_path: bool = False
    disable_handle_method_not_allowed: bool = False
    disable_path_decoding: bool = False
    disable_access_log: bool = False
    error_body: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ClientOptions:
    """
    The service-level HTTP client settings that map onto the connection pool.
    """

    max_idle_connections_per_host: int = 250
    idle_connection_timeout: Optional[float] = None
    dialer_timeout: Optional[float] = None
    disable_keep_alives: bool = False
    allow_insecure_connections: bool = False


@dataclass(frozen=True)
class ServiceShadowOptions:
    """
    Service-level shadow settings (C{extra_config.shadowgw}).
    """

    max_shadow_in_flight: int = 1000
    admin: Optional[str] = None


@dataclass(frozen=True)
class ServiceConfig:
    """
    A whole, validated configuration.

    @ivar source: the file it came from.
    @ivar warnings: things worth saying at start that do not stop the gateway (unimplemented
        namespaces, skipped endpoints), each a full sentence.
    """

    source: str
    port: int
    listen_ip: str
    timeout: float
    cache_ttl: float
    output_encoding: str
    endpoints: tuple
    router: RouterOptions
    client: ClientOptions
    shadowgw: ServiceShadowOptions
    hosts: tuple = ()
    name: str = ""
    debug_endpoint: bool = False
    echo_endpoint: bool = False
    extra_config: Mapping[str, Any] = field(default_factory=dict)
    warnings: tuple = ()


def canonical_header(name: str) -> str:
    """
    Go's canonical MIME header form: C{x-y-z} becomes C{X-Y-Z}.

    @param name: a header name.
    @return: the canonical spelling.
    """
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def param_key(name: str) -> str:
    """
    KrakenD's parameter key: the first letter upper-cased (C{id} becomes C{Id}).

    @param name: a parameter name from a path template.
    @return: the key under which KrakenD stores it.
    """
    return name[:1].upper() + name[1:]


def sanitize_host(host: str) -> Optional[str]:
    """
    KrakenD's C{SafeCleanHost}: scheme (default C{http://}), host and port, trailing slash dropped.

    @param host: a C{host} entry.
    @return: the clean host, or C{None} when it is invalid (a path, an IPv6 literal, junk).
    """
    matches = list(_HOST.finditer(host))
    if len(matches) != 1 or matches[0].group(0) == "":
        return None
    scheme, name, port = matches[0].groups()
    return (scheme or "http://") + name + (port or "")


def endpoint_params(path: str, disable_rest: bool = False) -> list:
    """
    The C{{param}} names of an endpoint template, in order.

    @param path: the endpoint template.
    @param disable_rest: KrakenD's C{disable_rest}: parameters may stand anywhere.
    @return: the parameter names.
    """
    pattern = _ANY_PARAM if disable_rest else _REST_PARAM
    return pattern.findall(path)


class _Reader:
    """
    Reads typed values out of the decoded document, recording a L{Problem} for each bad one.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list = []
        self.warnings: list = []

    def problem(self, path: str, message: str) -> None:
        self.problems.append(Problem(self.source, path, message))

    def value(self, obj: Mapping, key: str, path: str, kind: type, default: Any,
              describe: str = "") -> Any:
        """
        Read C{obj[key]} if it is of C{kind}; otherwise record a problem and return C{default}.
        """
        if key not in obj or obj[key] is None:
            return default
        raw = obj[key]
        ok = isinstance(raw, kind) and not (kind in (int, float) and isinstance(raw, bool))
        if kind is float and isinstance(raw, int) and not isinstance(raw, bool):
            return float(raw)
        if not ok:
            self.problem(_join(path, key), f"must be {describe or _KIND_NAMES.get(kind, kind.__name__)}, "
                                           f"got {_json_type(raw)}")
            return default
        return raw

    def section(self, raw: Any, path: str, known: Optional[Sequence[str]] = None) -> Optional[dict]:
        """
        An object-valued setting: C{None} when absent or not an object (the latter recorded as
        a problem), with every key not in C{known} recorded as a problem.
        """
        if raw is None:
            return None
        if not isinstance(raw, dict):
            self.problem(path, f"must be an object, got {_json_type(raw)}")
            return None
        if known is not None:
            for key in raw:
                if key not in known:
                    self.problem(_join(path, key), f"unknown setting (known: {', '.join(known)})")
        return raw

    def string_list(self, obj: Mapping, key: str, path: str) -> Optional[tuple]:
        raw = self.value(obj, key, path, list, None)
        if raw is None:
            return None
        good = []
        for index, item in enumerate(raw):
            if isinstance(item, str):
                good.append(item)
            else:
                self.problem(f"{_join(path, key)}[{index}]", f"must be a string, got {_json_type(item)}")
        return tuple(good)

    def duration(self, obj: Mapping, key: str, path: str, default: Optional[float]) -> Optional[float]:
        if key not in obj or obj[key] is None:
            return default
        raw = obj[key]
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw / 1e9  # Go decodes a bare number as nanoseconds
        try:
            seconds = parse_duration(raw)
        except ValueError as e:
            self.problem(_join(path, key), f"{e} (expected a Go duration such as \"150ms\" or \"1m30s\")")
            return default
        if seconds < 0:
            self.problem(_join(path, key), f"must not be negative, got {raw!r}")
            return default
        return seconds

    def number(self, obj: Mapping, key: str, path: str, default: float, low: float,
               high: Optional[float] = None, integer: bool = False) -> Any:
        kind = int if integer else float
        value = self.value(obj, key, path, kind, default,
                           "a whole number" if integer else "a number")
        if value is default:
            return default
        if value < low or (high is not None and value > high):
            bound = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
            self.problem(_join(path, key), f"must be {bound}, got {value:g}")
            return default
        return value


_KIND_NAMES = {str: "a string", bool: "true or false", int: "a whole number", float: "a number",
               list: "a list", dict: "an object"}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _normalize_namespaces(extra: Mapping) -> dict:
    return {NAMESPACE_ALIASES.get(k, k): v for k, v in extra.items()}


def decode_document(text: str, source: str) -> Any:
    """
    Decode a configuration file's text: YAML for C{.yml}/C{.yaml}, JSON otherwise.

    @param text: the file's contents.
    @param source: the file name (chooses the format and names the file in problems).
    @return: the decoded document.
    @raise ConfigError: on a syntax error, with line and column.
    """
    if source.endswith((".yml", ".yaml")):
        import yaml

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            reason = getattr(e, "problem", None) or str(e)
            raise ConfigError([Problem(source, where, f"invalid YAML: {reason}")])
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError([Problem(source, f"line {e.lineno}, column {e.colno}",
                                   f"invalid JSON: {e.msg}")])


def load_config(filename: str) -> ServiceConfig:
    """
    Read, decode and validate a configuration file.

    @param filename: a C{krakend.json} (or C{.yml}/C{.yaml}).
    @return: the validated configuration.
    @raise ConfigError: with every problem found.
    """
    try:
        with open(filename, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise ConfigError([Problem(filename, "", f"cannot read the file: {reason}")])
    return parse_config(decode_document(text, filename), filename)


def parse_config(document: Any, source: str = "<config>") -> ServiceConfig:
    """
    Validate a decoded configuration document and apply KrakenD's defaults.

    @param document: the decoded JSON/YAML.
    @param source: the file name used in problems.
    @return: the validated configuration.
    @raise ConfigError: with every problem found.
    """
    reader = _Reader(source)
    if not isinstance(document, dict):
        raise ConfigError([Problem(source, "", f"the top level must be an object, got {_json_type(document)}")])
    version = document.get("version")
    if version != 3:
        reader.problem("version", f"unsupported version: {version} (want: 3)")
    port = reader.number(document, "port", "", DEFAULT_PORT, 0, 65535, integer=True)
    listen_ip = reader.value(document, "listen_ip", "", str, "")
    if listen_ip and not _is_ip(listen_ip):
        reader.problem("listen_ip", f"invalid ip address: {listen_ip!r}")
    timeout = reader.duration(document, "timeout", "", DEFAULT_TIMEOUT) or DEFAULT_TIMEOUT
    cache_ttl = reader.duration(document, "cache_ttl", "", 0.0) or 0.0
    output_encoding = reader.value(document, "output_encoding", "", str, "json") or "json"
    disable_rest = reader.value(document, "disable_rest", "", bool, False)
    hosts = _read_hosts(reader, document, "", sanitize=True) or ()
    extra = reader.value(document, "extra_config", "", dict, {})
    extra = _normalize_namespaces(extra)
    namespaces_used: dict = {}
    _note_namespaces(extra, "extra_config", namespaces_used)
    router = _read_router(reader, extra.get("router"), "extra_config.router")
    _warn_ignored(reader, extra.get("router"), "extra_config.router", IGNORED_ROUTER_KEYS)
    _warn_ignored(reader, document, "", IGNORED_SERVICE_KEYS)
    client = _read_client(reader, document)
    shadowgw = _read_service_shadow(reader, extra.get("shadowgw"), "extra_config.shadowgw")

    defaults = {"timeout": timeout, "cache_ttl": cache_ttl, "output_encoding": output_encoding,
                "hosts": hosts, "disable_rest": disable_rest}
    endpoints = []
    raw_endpoints = reader.value(document, "endpoints", "", list, [])
    for index, raw in enumerate(raw_endpoints):
        path = f"endpoints[{index}]"
        if not isinstance(raw, dict):
            reader.problem(path, f"must be an object, got {_json_type(raw)}")
            continue
        endpoint = _read_endpoint(reader, raw, path, defaults, namespaces_used)
        if endpoint is not None:
            endpoints.append((path, endpoint))
    _check_routes(reader, endpoints)

    if reader.problems:
        raise ConfigError(reader.problems)
    for namespace in sorted(namespaces_used):
        places = namespaces_used[namespace]
        shown = ", ".join(places[:5]) + (f" and {len(places) - 5} more" if len(places) > 5 else "")
        reader.warnings.append(
            f"extra_config namespace {namespace!r} is not implemented by shadowtwist and is ignored "
            f"(used in {shown})")
    return ServiceConfig(
        source=source, port=port, listen_ip=listen_ip, timeout=timeout, cache_ttl=cache_ttl,
        output_encoding=output_encoding, endpoints=tuple(e for _, e in endpoints), router=router,
        client=client, shadowgw=shadowgw, hosts=tuple(hosts),
        name=reader.value(document, "name", "", str, ""),
        debug_endpoint=reader.value(document, "debug_endpoint", "", bool, False),
        echo_endpoint=reader.value(document, "echo_endpoint", "", bool, False),
        extra_config=extra, warnings=tuple(reader.warnings))


def _is_ip(text: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _note_namespaces(extra: Mapping, path: str, used: dict) -> None:
    for namespace in extra:
        if namespace not in IMPLEMENTED_NAMESPACES:
            used.setdefault(namespace, []).append(path)


def _read_hosts(reader: _Reader, obj: Mapping, path: str, sanitize: bool) -> Optional[list]:
    raw = reader.string_list(obj, "host", path)
    if raw is None:
        return None
    hosts = []
    for index, host in enumerate(raw):
        if not sanitize:
            hosts.append(host)
            continue
        clean = sanitize_host(host)
        if clean is None:
            reader.problem(f"{_join(path, 'host')}[{index}]",
                           f"invalid host {host!r}: expected [http[s]://]name[:port] without a path "
                           "(or set disable_host_sanitize)")
        else:
            hosts.append(clean)
    return hosts


def _read_router(reader: _Reader, raw: Any, path: str) -> RouterOptions:
    raw = reader.section(raw, path)
    if raw is None:
        return RouterOptions()
    flags = {}
    for name in ("return_error_msg", "disable_health", "auto_options", "hide_version_header",
                 "disable_redirect_trailing_slash", "disable_redirect_fixed_path",
                 "disable_handle_method_not_allowed", "disable_path_decoding", "disable_access_log"):
        flags[name] = reader.value(raw, name, path, bool, False)
    health_path = reader.value(raw, "health_path", path, str, "/__health") or "/__health"
    if not health_path.startswith("/"):
        health_path = "/" + health_path
    error_body = reader.value(raw, "error_body", path, dict, {})
    return RouterOptions(health_path=health_path, error_body=error_body, **flags)


# KrakenD settings shadowtwist accepts but does not implement: each present one is a warning.
IGNORED_SERVICE_KEYS = (
    "read_timeout", "write_timeout", "idle_timeout", "read_header_timeout", "max_header_bytes",
    "dialer_keep_alive", "dialer_fallback_delay", "disable_compression", "max_idle_connections",
    "response_header_timeout", "expect_continue_timeout", "client_tls", "tls", "use_h2c",
    "dns_cache_ttl", "max_shutdown_wait_time", "plugin", "async_agent", "sequential_start")
IGNORED_ROUTER_KEYS = (
    "forwarded_by_client_ip", "remote_ip_headers", "trusted_proxies", "remove_extra_slash",
    "app_engine", "max_multipart_memory", "use_h2c", "logger_skip_paths")


def _warn_ignored(reader: _Reader, raw: Any, path: str, keys: Sequence[str]) -> None:
    if not isinstance(raw, dict):
        return
    for key in keys:
        if key in raw:
            reader.warnings.append(f"{_join(path, key)}: not implemented by shadowtwist, ignored")


def _read_client(reader: _Reader, document: Mapping) -> ClientOptions:
    return ClientOptions(
        max_idle_connections_per_host=reader.number(
            document, "max_idle_connections_per_host", "", 250, 0, integer=True) or 250,
        idle_connection_timeout=reader.duration(document, "idle_connection_timeout", "", None),
        dialer_timeout=reader.duration(document, "dialer_timeout", "", None),
        disable_keep_alives=reader.value(document, "disable_keep_alives", "", bool, False),
        allow_insecure_connections=reader.value(document, "allow_insecure_connections", "", bool, False),
    )


def _read_service_shadow(reader: _Reader, raw: Any, path: str) -> ServiceShadowOptions:
    raw = reader.section(raw, path, ("max_shadow_in_flight", "admin"))
    if raw is None:
        return ServiceShadowOptions()
    return ServiceShadowOptions(
        max_shadow_in_flight=reader.number(raw, "max_shadow_in_flight", path, 1000, 1, integer=True),
        admin=reader.value(raw, "admin", path, str, None),
    )


def _read_endpoint(reader: _Reader, raw: Mapping, path: str, defaults: Mapping,
                   namespaces_used: dict) -> Optional[EndpointConfig]:
    template = reader.value(raw, "endpoint", path, str, None)
    if template is None:
        reader.problem(_join(path, "endpoint"), "is required")
        return None
    if not template.startswith("/"):
        template = "/" + template
    method = (reader.value(raw, "method", path, str, "GET") or "GET").upper()
    problems_before = len(reader.problems)
    if _INVALID_ENDPOINT.search(template) or template.endswith("*"):
        reader.problem(_join(path, "endpoint"),
                       f"ignoring the '{method} {template}' endpoint, since it is invalid!!! "
                       "(wildcards and the reserved /__debug, /__echo and /__health paths are not allowed)")
    timeout = reader.duration(raw, "timeout", path, None) or defaults["timeout"]
    cache_ttl = reader.duration(raw, "cache_ttl", path, None) or defaults["cache_ttl"]
    output_encoding = reader.value(raw, "output_encoding", path, str, "") or defaults["output_encoding"]
    concurrent_calls = reader.number(raw, "concurrent_calls", path, 1, 1, integer=True) or 1
    input_headers = reader.string_list(raw, "input_headers", path) or ()
    input_query_strings = reader.string_list(raw, "input_query_strings", path) or ()
    extra = _normalize_namespaces(reader.value(raw, "extra_config", path, dict, {}))
    _note_namespaces(extra, _join(path, "extra_config"), namespaces_used)
    params = endpoint_params(template, defaults["disable_rest"])
    proxy = extra.get("proxy") if isinstance(extra.get("proxy"), dict) else {}
    proxy_path = _join(path, "extra_config.proxy")
    sequential = reader.value(proxy, "sequential", proxy_path, bool, False)
    static = _read_static(reader, proxy.get("static"), _join(proxy_path, "static"))
    flatmap = _read_flatmap(reader, proxy, proxy_path)
    raw_backends = reader.value(raw, "backend", path, list, [])
    if not raw_backends:
        reader.problem(_join(path, "backend"),
                       f"ignoring the '{method} {template}' endpoint, since it has 0 backends defined!")
    backends = []
    for index, raw_backend in enumerate(raw_backends):
        backend_path = f"{path}.backend[{index}]"
        if not isinstance(raw_backend, dict):
            reader.problem(backend_path, f"must be an object, got {_json_type(raw_backend)}")
            continue
        backend = _read_backend(reader, raw_backend, backend_path, index, method, params,
                                defaults, namespaces_used)
        if backend is not None:
            backends.append(backend)
    if (output_encoding not in OUTPUT_ENCODINGS and len(backends) == 1
            and backends[0].encoding in RENDERERS):
        # lura's getRender: an unknown output_encoding falls back to the renderer named by the
        # only backend's encoding (string, xml, no-op...), else to JSON
        output_encoding = backends[0].encoding
    if output_encoding == "no-op":
        # KrakenD counts shadows too; shadowtwist lets a no-op endpoint have shadows (README).
        if sum(not b.shadow for b in backends) > 1:
            reader.problem(_join(path, "output_encoding"),
                           "can not use NoOp encoding with more than one backends connected to the "
                           "same endpoint (shadow backends may be added)")
        backends = [replace(b, encoding="no-op") for b in backends]
    if backends and all(b.shadow for b in backends):
        reader.warnings.append(
            f"{_join(path, 'backend')}: all backends are shadow backends; as in KrakenD, "
            f"'{method} {template}' always answers 500")
    if method not in REGISTERED_METHODS:
        reader.warnings.append(
            f"{path}: method {method!r} is not supported (only {', '.join(REGISTERED_METHODS)}); "
            f"the '{method} {template}' endpoint is skipped")
        return None
    if len(reader.problems) != problems_before:
        return None
    return EndpointConfig(
        path=template, method=method, backends=tuple(backends), timeout=timeout, cache_ttl=cache_ttl,
        output_encoding=output_encoding, concurrent_calls=concurrent_calls,
        input_headers=tuple(input_headers), input_query_strings=tuple(input_query_strings),
        params=tuple(params), sequential=sequential, static=static, flatmap=flatmap, extra_config=extra)


def _read_backend(reader: _Reader, raw: Mapping, path: str, index: int, endpoint_method: str,
                  params: Sequence[str], defaults: Mapping, namespaces_used: dict
                  ) -> Optional[BackendConfig]:
    problems_before = len(reader.problems)
    disable_sanitize = reader.value(raw, "disable_host_sanitize", path, bool, False)
    hosts = _read_hosts(reader, raw, path, sanitize=not disable_sanitize)
    if hosts is None:
        hosts = list(defaults["hosts"])
    if not hosts and len(reader.problems) == problems_before:
        reader.problem(_join(path, "host"), "no hosts: set host here or at the top level")
    url_pattern = reader.value(raw, "url_pattern", path, str, None)
    if url_pattern is None:
        reader.problem(_join(path, "url_pattern"), "is required")
        url_pattern = "/"
    if not url_pattern.startswith("/"):
        url_pattern = "/" + url_pattern
    _check_placeholders(reader, url_pattern, _join(path, "url_pattern"), params)
    sd = reader.value(raw, "sd", path, str, "static")
    if sd not in ("static", ""):
        reader.problem(_join(path, "sd"), f"service discovery {sd!r} is not supported (only \"static\")")
    method = (reader.value(raw, "method", path, str, "") or endpoint_method).upper()
    encoding = (reader.value(raw, "encoding", path, str, "json") or "json")
    if encoding.lower() == "rss":
        reader.warnings.append(f"{_join(path, 'encoding')}: rss is not implemented by shadowtwist; "
                               "the body is decoded as JSON")
    mapping = reader.value(raw, "mapping", path, dict, {})
    for key, value in mapping.items():
        if not isinstance(value, str):
            reader.problem(f"{_join(path, 'mapping')}.{key}", f"must be a string, got {_json_type(value)}")
    extra = _normalize_namespaces(reader.value(raw, "extra_config", path, dict, {}))
    extra_path = _join(path, "extra_config")
    _note_namespaces(extra, extra_path, namespaces_used)
    proxy = extra.get("proxy") if isinstance(extra.get("proxy"), dict) else {}
    shadow = proxy.get("shadow") is True  # KrakenD: only the JSON boolean true
    shadow_timeout = reader.duration(proxy, "shadow_timeout", _join(extra_path, "proxy"), None)
    flatmap = _read_flatmap(reader, proxy, _join(extra_path, "proxy"))
    http_options = extra.get("backend/http") if isinstance(extra.get("backend/http"), dict) else {}
    http_path = _join(extra_path, "backend/http")
    shadow_options = _read_shadow_options(reader, extra.get("shadowgw/shadow"),
                                          _join(extra_path, "shadowgw/shadow"), shadow)
    if len(reader.problems) != problems_before:
        return None
    return BackendConfig(
        index=index, hosts=tuple(hosts), url_pattern=url_pattern, method=method, encoding=encoding,
        is_collection=reader.value(raw, "is_collection", path, bool, False),
        group=reader.value(raw, "group", path, str, ""),
        target=reader.value(raw, "target", path, str, ""),
        allow=reader.string_list(raw, "allow", path) or (),
        deny=reader.string_list(raw, "deny", path) or (),
        mapping=dict(mapping), flatmap=flatmap,
        input_headers=reader.string_list(raw, "input_headers", path),
        input_query_strings=reader.string_list(raw, "input_query_strings", path),
        shadow=shadow, shadow_timeout=shadow_timeout, shadow_options=shadow_options,
        return_error_details=reader.value(http_options, "return_error_details", http_path, str, ""),
        return_error_code=reader.value(http_options, "return_error_code", http_path, bool, False),
        extra_config=extra)


def _read_flatmap(reader: _Reader, proxy: Mapping, path: str) -> Optional[tuple]:
    raw = proxy.get("flatmap_filter")
    if raw is None:
        return None
    problems = validate_flatmap(raw)
    for problem in problems:
        reader.problem(_join(path, "flatmap_filter"), problem)
    return None if problems else tuple(raw)


def _read_static(reader: _Reader, raw: Any, path: str) -> Optional[StaticResponse]:
    """
    KrakenD ignores a static block whose data is not an object, and treats a missing or unknown
    strategy as C{always}; we do the same, with a warning rather than silence.
    """
    if raw is None:
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("data"), dict):
        reader.warnings.append(f"{path}: ignored, as KrakenD does: \"data\" must be an object")
        return None
    strategy = raw.get("strategy", "always")
    if strategy not in STATIC_STRATEGIES:
        reader.warnings.append(f"{path}.strategy: {strategy!r} is not one of {', '.join(STATIC_STRATEGIES)}; "
                               "treated as \"always\", as KrakenD does")
        strategy = "always"
    return StaticResponse(strategy=strategy, data=dict(raw["data"]))


def _check_placeholders(reader: _Reader, url_pattern: str, path: str, params: Sequence[str]) -> None:
    """
    lura's check: more distinct placeholders than endpoint parameters is "input and output
    params do not match"; otherwise each must be an endpoint parameter, by its exact name
    (sequential C{respN_} and C{JWT.} placeholders excepted).
    """
    outputs = [name for name in dict.fromkeys(_PATTERN_PARAM.findall(url_pattern))
               if not _SPECIAL_PLACEHOLDER.match(name)]
    have = ", ".join(repr(p) for p in params) or "no parameters"
    if len(outputs) > len(set(params)):
        reader.problem(path, f"input and output params do not match: the endpoint has {have}, "
                             f"the url_pattern uses {', '.join(repr(o) for o in outputs)}")
        return
    for name in outputs:
        if name not in params:
            reader.problem(path, f"undefined output param {name!r}: the endpoint has {have}")


_SHADOW_KEYS = ("percentage", "sticky_key", "start", "methods", "allow_unsafe", "max_in_flight",
                "max_body_bytes", "on_body_overflow", "headers", "compare", "capture", "auto_pause")


# A plain KrakenD shadow (no shadowgw/shadow block) keeps its KrakenD meaning: every method is
# copied and the request is not marked. The in-flight caps still apply: they only ever drop copies.
KRAKEND_SHADOW = ShadowOptions(methods=REGISTERED_METHODS, allow_unsafe=True,
                               headers=HeaderRules(set={}, remove=()))


def _read_shadow_options(reader: _Reader, raw: Any, path: str, shadow: bool) -> ShadowOptions:
    if raw is None:
        return KRAKEND_SHADOW
    raw = reader.section(raw, path, _SHADOW_KEYS)
    if raw is None:
        return ShadowOptions()
    if not shadow:
        reader.problem(path, "only applies to shadow backends: add \"proxy\": {\"shadow\": true}")
    sticky_key = reader.value(raw, "sticky_key", path, str, None)
    if sticky_key is not None:
        try:
            parse_sticky_key(sticky_key)
        except ValueError as e:
            reader.problem(_join(path, "sticky_key"), str(e))
    start = _choice(reader, raw, "start", path, ("parallel", "after_response", "on_primary_success"))
    allow_unsafe = reader.value(raw, "allow_unsafe", path, bool, False)
    methods = reader.string_list(raw, "methods", path)
    if methods is None:
        methods = SAFE_METHODS + (UNSAFE_METHODS if allow_unsafe else ())
    methods = tuple(m.upper() for m in methods)
    for i, method in enumerate(methods):
        if method in UNSAFE_METHODS and not allow_unsafe:
            reader.problem(f"{_join(path, 'methods')}[{i}]",
                           f"{method} is an unsafe method: set \"allow_unsafe\": true to shadow it")
    return ShadowOptions(
        percentage=reader.number(raw, "percentage", path, 100.0, 0, 100),
        sticky_key=sticky_key, start=start, methods=methods, allow_unsafe=allow_unsafe,
        max_in_flight=reader.number(raw, "max_in_flight", path, 64, 1, integer=True),
        max_body_bytes=reader.number(raw, "max_body_bytes", path, 65536, 0, integer=True),
        on_body_overflow=_choice(reader, raw, "on_body_overflow", path, ("skip", "headers_only")),
        headers=_read_header_rules(reader, raw.get("headers"), _join(path, "headers")),
        compare=_read_compare(reader, raw.get("compare"), _join(path, "compare")),
        capture=reader.number(raw, "capture", path, 50, 0, integer=True),
        auto_pause=_read_auto_pause(reader, raw.get("auto_pause"), _join(path, "auto_pause")),
    )


def _choice(reader: _Reader, raw: Mapping, key: str, path: str, choices: Sequence[str]) -> str:
    value = reader.value(raw, key, path, str, choices[0])
    if value not in choices:
        reader.problem(_join(path, key), f"must be one of {', '.join(choices)}, got {value!r}")
        return choices[0]
    return value


def _read_header_rules(reader: _Reader, raw: Any, path: str) -> HeaderRules:
    raw = reader.section(raw, path, ("set", "remove"))
    if raw is None:
        return HeaderRules()
    to_set = reader.value(raw, "set", path, dict, {"X-Shadow-Request": "1"})
    for name, value in to_set.items():
        if not isinstance(value, str):
            reader.problem(f"{path}.set.{name}", f"must be a string, got {_json_type(value)}")
    return HeaderRules(set=dict(to_set), remove=reader.string_list(raw, "remove", path) or ())


def _read_compare(reader: _Reader, raw: Any, path: str) -> CompareOptions:
    raw = reader.section(raw, path, ("status", "body", "headers", "ignore", "against", "learn_noise"))
    if raw is None:
        return CompareOptions()
    ignore = reader.string_list(raw, "ignore", path) or ()
    for i, pointer in enumerate(ignore):
        why = validate_pointer_pattern(pointer)
        if why:
            reader.problem(f"{path}.ignore[{i}]", why)
    against = raw.get("against")
    if against is not None:
        against = reader.number(raw, "against", path, None, 0, integer=True)
    return CompareOptions(
        status=reader.value(raw, "status", path, bool, True),
        body=reader.value(raw, "body", path, bool, True),
        headers=reader.string_list(raw, "headers", path) or (),
        ignore=ignore, against=against,
        learn_noise=reader.number(raw, "learn_noise", path, 0.0, 0, 1),
    )


def _read_auto_pause(reader: _Reader, raw: Any, path: str) -> Optional[AutoPauseOptions]:
    raw = reader.section(raw, path, ("error_rate", "window", "min_requests"))
    if raw is None:
        return None
    window = reader.duration(raw, "window", path, 30.0)
    if not window:
        reader.problem(_join(path, "window"), "must be longer than 0")
    return AutoPauseOptions(
        error_rate=_error_rate(reader, raw, path),
        window=window or 30.0,
        min_requests=reader.number(raw, "min_requests", path, 50, 1, integer=True),
    )


def _error_rate(reader: _Reader, raw: Mapping, path: str) -> float:
    rate = reader.number(raw, "error_rate", path, 0.5, 0, 1)
    if rate == 0:
        reader.problem(_join(path, "error_rate"), "must be above 0 (0 would pause the shadow at once)")
        return 0.5
    return rate


def _check_routes(reader: _Reader, endpoints: Sequence) -> None:
    """
    What gin refuses at start: the same method and path twice, and different parameter names at
    the same position of the same route prefix.
    """
    seen: dict = {}
    names_at: dict = {}
    for path, endpoint in endpoints:
        key = (endpoint.method, endpoint.path)
        if key in seen:
            reader.problem(_join(path, "endpoint"),
                           f"'{endpoint.method} {endpoint.path}' is already defined at {seen[key]}")
        else:
            seen[key] = path
        prefix = ""
        for segment in endpoint.path.split("/")[1:]:
            match = re.fullmatch(r"\{([a-zA-Z\-_0-9]+)\}", segment)
            if match:
                other = names_at.setdefault(prefix, (match.group(1), path))
                if other[0] != match.group(1):
                    reader.problem(_join(path, "endpoint"),
                                   f"parameter {{{match.group(1)}}} conflicts with {{{other[0]}}} "
                                   f"at the same position in {other[1]}")
                prefix += "/{}"
            else:
                prefix += "/" + segment


def describe_endpoints(config: ServiceConfig) -> list:
    """
    One line per endpoint, for the start-up log: method, path, primaries and shadows.

    @param config: a validated configuration.
    @return: human-readable lines.
    """
    lines = []
    for endpoint in config.endpoints:
        primaries = ", ".join(b.label for b in endpoint.primaries)
        shadows = ", ".join(b.label for b in endpoint.shadows)
        line = f"{endpoint.name} -> {primaries}"
        if shadows:
            line += f" (shadow: {shadows})"
        lines.append(line)
    return lines


def check(filename: str, printer: Callable[[str], None]) -> int:
    """
    The C{shadowgw check} command: validate a file and report.

    @param filename: the configuration file.
    @param printer: where lines go.
    @return: the exit status, 0 for a good file and 1 otherwise.
    """
    try:
        config = load_config(filename)
    except ConfigError as e:
        for problem in e.problems:
            printer(str(problem))
        printer(f"{filename}: {len(e.problems)} problem(s) found")
        return 1
    for warning in config.warnings:
        printer(f"warning: {warning}")
    printer(f"Syntax OK! {filename}: {len(config.endpoints)} endpoint(s)")
    return 0
