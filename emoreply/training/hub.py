"""Hub push for the training scripts: checked before training, explained when it fails after it.

python -m emoreply.training.hub runs/emotion-cnn you/emotion-cnn   # push a finished run later
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import push_folder_to_hub


class HubPushError(RuntimeError):
    """The Hub cannot take the push; the message is one line saying why and what to do."""


def push_command(folder: str | Path, repo_id: str) -> str:
    """The one command that pushes a finished run's folder later."""
    return f"python -m emoreply.training.hub {folder} {repo_id}"


def check_hub_push(repo_id: str | None, token: str | None = None) -> str:
    """Check reachability, the token and write access to ``repo_id``; return the full ``namespace/name``.

    Takes seconds and runs before training, so a missing token or the network fails the run at once,
    not after hours. A ``repo_id`` without a namespace gets the token's user. A repository that does
    not exist yet is created (empty) here: creating it is the only real test of write access to its
    namespace. Raises :class:`HubPushError`.
    """
    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import HfHubHTTPError, LocalTokenNotFoundError, OfflineModeIsEnabled

    if not repo_id:
        raise HubPushError("--push_to_hub needs --hub_model_id (user/name or name)")
    api = HfApi(token=token)
    where = constants.ENDPOINT
    try:
        user = api.whoami()
        if "/" not in repo_id:
            repo_id = f"{user['name']}/{repo_id}"
        try:
            api.auth_check(repo_id, repo_type="model", write=True)
        except HfHubHTTPError as err:
            if getattr(err.response, "status_code", None) != 404:
                raise
            api.create_repo(repo_id, exist_ok=True, repo_type="model")  # new repo: creating it proves write access
            api.auth_check(repo_id, repo_type="model", write=True)
    except LocalTokenNotFoundError as err:
        raise HubPushError(
            "--push_to_hub needs a Hub token with write access: pass --hub_token, set HF_TOKEN or run `hf auth login`"
        ) from err
    except OfflineModeIsEnabled as err:
        raise HubPushError("--push_to_hub but HF_HUB_OFFLINE is set: unset it, or train without --push_to_hub") from err
    except HfHubHTTPError as err:
        status = getattr(err.response, "status_code", None)
        if status == 401:
            why = "the token was rejected (401): check --hub_token / HF_TOKEN"
        elif status in (403, 404):
            why = f"the token cannot write to {repo_id} ({status}): use a write token, or a repo in your namespace"
        else:
            why = f"the Hub answered {status}: {str(err).splitlines()[0]}"
        raise HubPushError(f"--push_to_hub: {why}") from err
    except Exception as err:  # the transport's own errors (DNS, refused, timeout): the Hub is not reachable
        raise HubPushError(
            f"--push_to_hub: cannot reach the Hub at {where} ({type(err).__name__}: {err}): "
            "check the network or HF_ENDPOINT, or drop --push_to_hub"
        ) from err
    return repo_id


def preflight_hub_push(args, state) -> str:
    """:func:`check_hub_push` for a training script's ``--hub_model_id`` (default: the output folder's name).

    Runs on the main process only and shares its verdict, so N processes make one set of Hub calls and
    all stop together; exits with the one-line reason. Returns the full repo id to push to.
    """
    verdict: list = [None]
    if state.is_main_process:
        try:
            verdict = [("ok", check_hub_push(args.hub_model_id or Path(args.output_dir).name, args.hub_token))]
        except HubPushError as err:
            verdict = [("error", str(err))]
    if state.num_processes > 1:
        from accelerate.utils import broadcast_object_list

        broadcast_object_list(verdict)
    kind, value = verdict[0]
    if kind == "error":
        raise SystemExit(value if state.is_main_process else 1)
    return value


def push_after_training(folder: str | Path, repo_id: str, token: str | None = None) -> str:
    """Push the finished ``folder`` and return its URL; on failure exit saying that the folder is
    complete and which command pushes it later."""
    try:
        return push_folder_to_hub(folder, repo_id, token)
    except Exception as err:  # network, auth, quota: the run itself is done and stays on disk
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise SystemExit(
            f"The push to {repo_id} failed ({type(err).__name__}: {first}). The outputs in {folder} are complete; "
            f"push them later with: {push_command(folder, repo_id)}"
        ) from err


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description="Push a finished training run (without its checkpoints) to the Hub.")
    parser.add_argument("folder", help="the run's output_dir")
    parser.add_argument("repo_id", help="user/name on the Hub")
    parser.add_argument("--token", help="Hub token (default: HF_TOKEN or the saved login)")
    args = parser.parse_args(argv)
    if not (Path(args.folder) / "config.json").exists() and not (Path(args.folder) / "adapter_config.json").exists():
        parser.error(f"{args.folder} holds no exported model (config.json or adapter_config.json)")
    try:
        repo_id = check_hub_push(args.repo_id, args.token)
    except HubPushError as err:
        raise SystemExit(str(err)) from None
    url = push_after_training(args.folder, repo_id, args.token)
    print(f"pushed {args.folder} to {url}")
    return url


if __name__ == "__main__":
    main()
