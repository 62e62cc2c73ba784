"""`babilab push SUITE REPO_ID`: a suite on the Hugging Face hub, as a dataset repo in the
layout of `RMT-team/babilong` (hub.py), so `load_dataset(REPO_ID, "4k")["qa1"]` works.

The files are exactly `babilab export-suite`'s, built in a temporary folder, with the card's
example naming the repo; `stage_push` builds them alone (`--stage-only DIR`), which is what
the tests load back with `datasets`. The upload is two calls of huggingface_hub's HfApi:
`create_repo(private=True unless --public, exist_ok=True)`, then `upload_folder`. An existing
repo keeps its visibility.

The token comes from huggingface_hub itself (`HF_TOKEN`, or the one `hf auth login` saved):
babilab never stores, logs or prints it. A missing token or HF_HUB_OFFLINE is one line before
anything is built or sent. Only the upload needs the network.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from ..errors import BabilabError
from .hub import CARD_FILE, export_hub

REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}$")
CARD_EXAMPLE = 'load_dataset("PATH_TO_THIS_FOLDER"'  # what hub.card_text writes for a folder


def check_repo_id(repo_id: str) -> str:
    """`repo_id` if it is a hub repo id (OWNER/NAME), else a BabilabError.

    >>> check_repo_id("me/babilong-fresh")
    'me/babilong-fresh'
    """
    if not REPO_ID.match(repo_id) or ".." in repo_id or repo_id.endswith((".git", ".")):
        raise BabilabError(f"{repo_id!r} is not a hub repo id; write OWNER/NAME, e.g. "
                           "me/babilong-fresh")
    return repo_id


def stage_push(suite_path: Path | str, folder: Path | str, repo_id: str,
               license: str = "apache-2.0") -> Path:
    """Write the files `push` uploads to `folder` (new or empty); no token, no network."""
    check_repo_id(repo_id)  # before anything is written
    folder = export_hub(suite_path, folder, license)
    card = folder / CARD_FILE
    card.write_text(card.read_text(encoding="utf-8").replace(
        CARD_EXAMPLE, f'load_dataset("{repo_id}"'), encoding="utf-8")
    return folder


def hub_token() -> str:
    """The token huggingface_hub would use; a clear error, and no network, without one."""
    try:
        from huggingface_hub import constants, get_token
    except ImportError:
        raise BabilabError("push needs huggingface_hub: pip install 'babilab[hf]'") from None
    if constants.HF_HUB_OFFLINE:
        raise BabilabError("HF_HUB_OFFLINE is set and the upload needs the network; unset it, "
                           "or build the files only with --stage-only DIR")
    token = get_token()
    if not token:
        raise BabilabError("no Hugging Face token: set HF_TOKEN or run `hf auth login` (a token "
                           "with write access); nothing was uploaded")
    return token


def staged_files(folder: Path) -> list[tuple[str, int]]:
    """(path relative to `folder`, bytes) of every file, in order."""
    return [(p.relative_to(folder).as_posix(), p.stat().st_size)
            for p in sorted(folder.rglob("*")) if p.is_file()]


def push_suite(suite_path: Path | str, repo_id: str, private: bool = True,
               license: str = "apache-2.0", api=None) -> str:
    """Upload the suite to the dataset repo `repo_id`; returns the repo's URL. `api` is an
    HfApi (the tests pass a fake; by default one is made with the login's token)."""
    check_repo_id(repo_id)
    token = hub_token()
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(token=token)
    with tempfile.TemporaryDirectory(prefix="babilab-push-") as tmp:
        folder = stage_push(suite_path, Path(tmp) / "dataset", repo_id, license)
        try:
            url = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
            api.upload_folder(repo_id=repo_id, repo_type="dataset", folder_path=str(folder),
                              commit_message="Upload a babilab suite (babilab push)")
        except Exception as e:  # all the hub's or the network's (auth, HTTP, DNS): one line
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise BabilabError(f"upload to {repo_id} failed: {first.replace(token, '***')}") from None
    return str(url)
