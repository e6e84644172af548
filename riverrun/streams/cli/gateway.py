"""``riverrun gateway``: HTTP ingest and serving, and ``gateway token`` (a bearer token and its
grant line)."""

from __future__ import annotations

import sys

from riverrun.streams.cli.common import command, kafka_settings


def add_gateway(sub) -> None:
    p = command(
        sub,
        "gateway",
        help="HTTP ingest and serving (faust-streaming): POST events/labels, GET predictions/features",
        description="Serve HTTP at [gateway] address:port (default 127.0.0.1:8080), in a process of "
        "its own: POST /events and /labels (one JSON record or an array; validated like the flow "
        "validates them; 202 once Kafka acknowledged, 400/413 with the dead-letter reason), "
        "GET /predictions/ENTITY[?model=NAME] and /features/ENTITY (latest, from the online store "
        "in Redis), GET /models (registry versions; needs RIVERRUN_REGISTRY__KEY), GET /healthz. "
        "A Faust agent copies the predictions topic into the online store; the flow writes the "
        "features when [online_store] enabled = true. Every route but /healthz needs a bearer "
        'token ([gateway] auth = "token"; `riverrun gateway token` makes one). Needs the gateway '
        "extra: pip install 'riverrun[gateway]' (from a clone: pip install -e '.[gateway]').",
    )
    p.add_argument("--address", help="interface to bind (default: [gateway] address, 127.0.0.1)")
    p.add_argument("--port", type=int, help="TCP port (default: [gateway] port, 8080)")
    p.set_defaults(fn=_cmd_gateway)
    gsub = p.add_subparsers(dest="gateway_command", metavar="ACTION")
    pt = gsub.add_parser(
        "token",
        help="make a bearer token and its grant line",
        description="Print a new random bearer token (line 1, for the client) and its grant line "
        "(line 2, 'sha256:HASH SCOPES [NAME]', for [gateway] tokens_file or RIVERRUN_GATEWAY__TOKENS). "
        "Needs no extra and no broker.",
    )
    pt.add_argument("--scope", default="ingest,read", help="ingest, read or ingest,read (default)")
    pt.add_argument("--name", default="", help="a name for the gateway's logs")
    pt.set_defaults(fn=_cmd_gateway_token)


def _cmd_gateway(args) -> int:
    from riverrun.streams.serving.app import run_gateway

    settings = kafka_settings(args)
    flags = {k: v for k, v in (("address", args.address), ("port", args.port)) if v is not None}
    if flags:  # flags beat the file and the environment
        settings = settings.model_copy(update={"gateway": settings.gateway.model_copy(update=flags)})
    run_gateway(settings, loglevel=args.log_level)
    return 0


def _cmd_gateway_token(args) -> int:
    from riverrun.streams.serving.auth import grant_line

    token, line = grant_line([s.strip() for s in args.scope.split(",")], args.name)
    print(token)
    print(line)
    print(
        "line 1: the bearer token, for the client only (shown once); line 2: the grant, for the "
        "gateway: a line of [gateway] tokens_file, or RIVERRUN_GATEWAY__TOKENS (';' between grants)",
        file=sys.stderr,
    )
    return 0
