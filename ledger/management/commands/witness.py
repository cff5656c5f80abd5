"""manage.py witness --url URL --key KEY --credentials FILE: witness Chainfin's log.

    manage.py witness --url https://chainfin.example --key @witness.key \
        --credentials acme-key.json --log-key "$(cat chainfin-log.vkey)" --interval 1

Each round fetches the latest checkpoint, checks the bank's signature and that the tree extends
the last one this witness saw (kept in --state), cosigns it (c2sp.org/tlog-cosignature) and
posts the cosignature. A log that shrinks, forks or rewrites its past is reported as ALARM and
never cosigned; with --interval 0 the command then exits 1. Make a key with
``manage.py witness --generate NAME``; the bank registers its vkey (witness_register).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper

from ledger.log.notes import Signer, SigningKeyInvalid
from ledger.log.witness import HttpLogClient, WitnessAlarm, witness_round
from ledger.verify import ALG_COSIGNATURE, VerificationError, Verifier


def _text(value: str) -> str:
    """``value``, or the contents of the file it names as ``@path``."""
    return Path(value[1:]).read_text().strip() if value.startswith("@") else value


class Command(BaseCommand):
    help = "Cosign Chainfin's checkpoints after checking each extends the last one seen."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--generate", metavar="NAME", help="Print a new witness key; exit.")
        parser.add_argument("--url", help="Chainfin's base URL.")
        parser.add_argument("--key", help="The witness's private key, or @file holding it.")
        parser.add_argument(
            "--credentials", help='API key file: {"api_key": …, "signing_secret": …}.'
        )
        parser.add_argument(
            "--log-key",
            help="The bank's vkey (or @file). Without it, the one at the URL's well-known path"
            " is fetched once and pinned in the state file.",
        )
        parser.add_argument("--state", default="witness-state.json", help="Last checkpoint seen.")
        parser.add_argument("--interval", type=float, default=0, help="Seconds; 0: one round.")
        parser.add_argument("--logfile", help="Append what it says here instead of the terminal.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["generate"]:
            signer = Signer.generate(options["generate"], ALG_COSIGNATURE)
            self.stdout.write(f"private key (keep it secret): {signer.encoded}")
            self.stdout.write(f"vkey (register it with the bank): {signer.verifier.vkey}")
            return
        if not (options["url"] and options["key"] and options["credentials"]):
            raise CommandError("--url, --key and --credentials are required.")
        try:
            self._watch(options)
        except KeyboardInterrupt:  # Ctrl-C ends a witness that runs until stopped, quietly
            return

    def _watch(self, options: Any) -> None:
        """Cosign round after round until the interval is 0 or the process is stopped."""
        try:
            signer = Signer.parse(_text(options["key"]), ALG_COSIGNATURE)
        except SigningKeyInvalid as exc:
            raise CommandError(f"--key: {exc}") from exc
        credentials = json.loads(Path(options["credentials"]).read_text())
        client = HttpLogClient(
            options["url"], credentials["api_key"], credentials["signing_secret"]
        )
        state = Path(options["state"])
        if options["logfile"]:
            log = open(options["logfile"], "a", buffering=1)  # noqa: SIM115  (open while running)
            self.stdout, self.stderr = OutputWrapper(log), OutputWrapper(log)
        while True:
            code = self._round(client, signer, options, state)
            if not options["interval"]:
                sys.exit(code)
            time.sleep(options["interval"])

    def _round(self, client: HttpLogClient, signer: Signer, options: Any, state: Path) -> int:
        try:
            log_key = Verifier.parse(self._log_key(client, options, state))
            cosigned = witness_round(
                client=client, signer=signer, log_key=log_key, state=state, now=int(time.time())
            )
        except WitnessAlarm as alarm:
            self.stderr.write(self.style.ERROR(f"ALARM: {alarm}"))
            return 1
        except (VerificationError, ConnectionError, OSError, ValueError) as exc:
            self.stderr.write(f"witness: {exc}")
            return 1
        if cosigned is not None:
            self.stdout.write(f"cosigned tree size {cosigned.size} as {signer.name}")
        return 0

    def _log_key(self, client: HttpLogClient, options: Any, state: Path) -> str:
        if options["log_key"]:
            return _text(options["log_key"])
        pinned = state.with_suffix(".log-key")
        if not pinned.exists():
            status, body = client.get("/.well-known/chainfin-log-key")
            if status != 200:
                raise ConnectionError(f"log key: HTTP {status}")
            pinned.write_text(body.decode().strip())
            self.stdout.write(f"pinned the log key {body.decode().strip()} (trust on first use)")
        return pinned.read_text().strip()
