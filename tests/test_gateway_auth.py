"""The gateway's start-up checks and tokens, without a broker: grants parsed and compared by hash,
``load_tokens`` refusing to start an open gateway by accident, ``riverrun gateway token``, and
``riverrun gateway`` exiting 2 with what to install when Faust or cramjam is missing (each
blocked by an import hook in a subprocess). The routes themselves: tests/test_gateway.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from riverrun.errors import ConfigError
from riverrun.streams.serving.app import load_tokens
from riverrun.streams.serving.auth import Tokens, grant_line, hash_token, parse_grants
from riverrun.streams.settings import Settings, load_settings
from tests.harness import ROOT


def test_tokens_grant_their_scopes_only() -> None:
    both, line_both = grant_line(["ingest", "read"], "app")
    ingest, line_ingest = grant_line(["ingest"])
    read, line_read = grant_line(["read"], "dashboard")
    tokens = Tokens(parse_grants(f"{line_both}; {line_ingest}\n# readers\n{line_read}\n", "test"))
    assert len(tokens) == 3 and {g.name for g in tokens.grants} == {"app", "grant-2", "dashboard"}
    for token, allowed in ((both, {"ingest", "read"}), (ingest, {"ingest"}), (read, {"read"})):
        assert token not in line_both + line_ingest + line_read  # only hashes are configured
        for scope in ("ingest", "read"):
            assert tokens.check(f"Bearer {token}", scope) == (200 if scope in allowed else 403)
            assert tokens.check(f"  bearer {token} ", scope) == (200 if scope in allowed else 403)
    for header in (None, "", "Bearer", "Bearer  ", both, f"Token {both}", f"Bearer {both}x",
                   f"Bearer {both} {both}", f"Bearer {hash_token(both)}", "Bearer " + "a" * 600):  # fmt: skip
        assert tokens.check(header, "read") == 401, header
    assert Tokens([]).check(f"Bearer {both}", "read") == 401


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("rr_plain_token ingest", "configure the hash of a token, never the token"),
        ("sha256:" + "0" * 63 + " ingest", "expected 'sha256:<64 hex digits>"),
        ("sha256:" + "0" * 64, "expected 'sha256:<64 hex digits>"),
        ("sha256:" + "0" * 64 + " write", "scopes 'write' not understood"),
        ("sha256:" + "0" * 64 + " read name extra", "expected 'sha256:<64 hex digits>"),
    ],
)
def test_a_wrong_grant_line_is_a_config_error_that_never_echoes_it(text: str, says: str) -> None:
    with pytest.raises(ConfigError, match="grant 1") as caught:
        parse_grants(text, "tokens.txt")
    assert says in str(caught.value) and "tokens.txt" in str(caught.value)
    assert "rr_plain_token" not in str(caught.value)


def settings_with(tmp_path: Path, gateway: str) -> Settings:
    config = tmp_path / "riverrun.toml"
    config.write_text("[gateway]\n" + gateway)
    return load_settings(config)


def test_auth_is_on_by_default_and_refuses_to_start_without_tokens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RIVERRUN_GATEWAY__TOKENS", raising=False)
    with pytest.raises(ConfigError, match="no token is configured") as caught:
        load_tokens(settings_with(tmp_path, ""))
    assert "riverrun gateway token --scope ingest,read" in str(caught.value)
    assert 'auth = "none"' in str(caught.value)
    with pytest.raises(ConfigError, match=r"tokens_file .*missing"):
        load_tokens(settings_with(tmp_path, f'tokens_file = "{tmp_path / "missing"}"\n'))
    assert load_tokens(settings_with(tmp_path, 'auth = "none"\n')) is None


def test_tokens_come_from_the_environment_and_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_token, env_line = grant_line(["read"])
    file_token, file_line = grant_line(["ingest"])
    (tmp_path / "tokens").write_text(file_line + "\n")
    monkeypatch.setenv("RIVERRUN_GATEWAY__TOKENS", env_line)
    tokens = load_tokens(settings_with(tmp_path, f'tokens_file = "{tmp_path / "tokens"}"\n'))
    assert tokens is not None and len(tokens) == 2
    assert (
        tokens.check(f"Bearer {env_token}", "read") == tokens.check(f"Bearer {file_token}", "ingest") == 200
    )


def cli(*args: str, block: str | None = None, config: Path | None = None) -> subprocess.CompletedProcess:
    """``riverrun ARGS`` in a subprocess; ``block`` makes ``import BLOCK`` fail there, as on a
    machine without that package."""
    hook = (
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.split('.')[0] == {block!r}: raise ModuleNotFoundError(f'No module named {{name!r}}', name=name)\n"  # noqa: E501
        "sys.meta_path.insert(0, Block())\n"
    )
    code = hook + "from riverrun.streams.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    argv = [*args, *(["-c", str(config)] if config else [])]
    return subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, cwd=ROOT, timeout=60, check=False
    )


@pytest.mark.parametrize(
    ("block", "says"),
    [
        ("faust", "needs the gateway extra (faust is not installed)"),
        ("cramjam", "cannot read lz4/snappy/zstd-compressed records"),
    ],
)
def test_gateway_without_the_extra_exits_2_saying_what_to_install(
    block: str, says: str, tmp_path: Path
) -> None:
    config = tmp_path / "riverrun.toml"
    config.write_text('[gateway]\nauth = "none"\n')
    done = cli("gateway", block=block, config=config)
    assert done.returncode == 2, done.stderr
    assert says in done.stderr and "pip install -e '.[gateway]'" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr, done.stderr


def test_gateway_without_tokens_exits_2_saying_how_to_make_one(tmp_path: Path) -> None:
    config = tmp_path / "riverrun.toml"
    config.write_text("[gateway]\n")
    done = cli("gateway", config=config)
    assert done.returncode == 2 and "riverrun gateway token" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_gateway_token_prints_a_token_and_the_grant_that_admits_it() -> None:
    done = cli("gateway", "token", "--scope", "read", "--name", "dashboard", block="faust")  # no extra needed
    assert done.returncode == 0, done.stderr
    token, line = done.stdout.splitlines()
    assert line.endswith(" read dashboard") and token not in line
    tokens = Tokens(parse_grants(line, "stdout"))
    assert tokens.check(f"Bearer {token}", "read") == 200 and tokens.check(f"Bearer {token}", "ingest") == 403
    bad = cli("gateway", "token", "--scope", "admin")
    assert bad.returncode == 2 and "scopes ['admin'] not understood" in bad.stderr
