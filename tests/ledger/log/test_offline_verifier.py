"""``python -m ledger.verify`` in a clean virtualenv holding nothing but ``cryptography``: an
exported bundle with a cosigned checkpoint verifies (exit 0); one altered body does not (1)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.utils import timezone

from ledger.log.bundles import bundle_export
from ledger.log.checkpoints import cosignature_add, log_verifier, witness_register
from ledger.log.notes import Signer
from ledger.log.proofs import checkpoint_at
from ledger.log.sequencer import log_sequence_all
from ledger.models import Entry
from ledger.services import entry_append
from ledger.verify import ALG_COSIGNATURE, note_parse
from tests.conftest import REPO_ROOT, order_placed

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


@pytest.fixture(scope="module")
def clean_python(tmp_path_factory) -> Path:
    """A virtualenv without pip whose only package is cryptography (and its cffi)."""
    root = tmp_path_factory.mktemp("clean")
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--without-pip", str(root / "venv")], check=True)
    [site] = (root / "venv" / "lib").glob("python*/site-packages")
    import cffi
    import cryptography

    only = root / "only"
    only.mkdir()
    for module in (cryptography, cffi):
        path = Path(module.__file__).parent
        (only / path.name).symlink_to(path)
    for backend in Path(cffi.__file__).parent.parent.glob("_cffi_backend*.so"):
        (only / backend.name).symlink_to(backend)
    (site / "only.pth").write_text(str(only) + "\n")
    work = root / "work" / "ledger"
    work.mkdir(parents=True)
    (work / "__init__.py").write_text("")
    shutil.copy(REPO_ROOT / "ledger" / "verify.py", work / "verify.py")
    return root


def _run(clean: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(clean / "venv" / "bin" / "python"), "-E", "-s", "-m", "ledger.verify", *args],
        cwd=clean / "work",
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"]},
        check=False,
    )


def test_the_verifier_needs_nothing_but_cryptography(clean_python) -> None:
    python = str(clean_python / "venv" / "bin" / "python")
    probe = "import cryptography, importlib.util as u; print(u.find_spec('django'))"
    result = subprocess.run([python, "-I", "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "None"


def test_a_cosigned_bundle_verifies_offline_and_an_altered_one_does_not(
    clean_python, merchant, marketplace, now, tmp_path
) -> None:
    for n in range(5):
        entry_append(
            source=marketplace.code, merchant_id=merchant.pk, event=order_placed(f"B-{n}"), now=now
        )
    log_sequence_all(now=now)
    witness = Signer.generate("auditor.example/w2", ALG_COSIGNATURE)
    witness_register(name=witness.name, vkey=witness.verifier.vkey, party="x", now=timezone.now())
    checkpoint = checkpoint_at()
    text = note_parse(checkpoint.note).text
    cosignature_add(tree_size=5, line=witness.cosign(text, 1_790_000_000).line, now=now)
    entries = Entry.objects.filter(chain=merchant.pk).select_related("chain__merchant")
    bundle = bundle_export(entries=entries.order_by("seq"))
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle))
    key, cosigner = log_verifier().vkey, witness.verifier.vkey

    result = _run(clean_python, str(path), "--key", key, "--witness", cosigner)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "VERIFIED" in result.stdout
    assert "cosigned by witness auditor.example/w2 at 1790000000" in result.stdout

    bundle["entries"][2]["body"] = bundle["entries"][2]["body"].replace("100.00", "900.00")
    path.write_text(json.dumps(bundle))
    result = _run(clean_python, str(path), "--key", key)
    assert result.returncode == 1
    assert "FAIL  entry 2: body does not hash to its hash" in result.stdout

    other = Signer.generate(log_verifier().name).verifier.vkey  # same name, another key
    result = _run(clean_python, str(path), "--key", other)
    assert result.returncode == 1 and "checkpoint: not signed by" in result.stdout
