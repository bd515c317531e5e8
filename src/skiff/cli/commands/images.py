"""`skiff images` (and `skiff image ls`): list images as `docker images` prints them.

One image becomes one row per repository:tag (per digest too with `--digests`); an image
with neither is one `<none> <none>` row. Sizes and times use docker's units.
"""

from __future__ import annotations

import time

from skiff.cli.args import add_format, parse_filters, parser
from skiff.cli.context import CliContext
from skiff.cli.output import human_size, human_size_precision, print_formatted, since, truncate_id

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


NONE = "<none>"
HEADERS = {
    "Repository": "REPOSITORY",
    "Tag": "TAG",
    "Digest": "DIGEST",
    "ID": "IMAGE ID",
    "CreatedSince": "CREATED",
    "CreatedAt": "CREATED AT",
    "Size": "SIZE",
    "Containers": "CONTAINERS",
    "SharedSize": "SHARED SIZE",
    "UniqueSize": "UNIQUE SIZE",
    "VirtualSize": "VIRTUAL SIZE",
}
DEFAULT_FORMAT = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
DIGESTS_FORMAT = (
    "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
)


def split_tag(ref: str) -> tuple[str, str]:
    """ "localhost:5000/a/b:t" -> ("localhost:5000/a/b", "t")."""
    name, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:
        return ref, ""
    return name, tag


def is_dangling(image: dict[str, Any]) -> bool:
    tags = image.get("RepoTags") or []
    digests = image.get("RepoDigests") or []
    if not tags and not digests:
        return True
    return tags == ["<none>:<none>"] and digests == ["<none>@<none>"]


def go_time_string(unix: int) -> str:
    """Go's time.Time.String() in local time: "2024-05-01 10:00:00 +0000 UTC"."""
    return time.strftime("%Y-%m-%d %H:%M:%S %z %Z", time.localtime(unix))


def _row(image: dict[str, Any], repo: str, tag: str, digest: str, trunc: bool) -> dict[str, str]:
    size = int(image.get("Size") or 0)
    shared = int(image.get("SharedSize", -1))
    containers = int(image.get("Containers", -1))
    created = int(image.get("Created") or 0)
    image_id = str(image.get("Id", ""))
    return {
        "Containers": "N/A" if containers == -1 else str(containers),
        "CreatedAt": go_time_string(created),
        "CreatedSince": since(created),
        "Digest": digest,
        "ID": truncate_id(image_id) if trunc else image_id,
        "Repository": repo,
        "SharedSize": "N/A" if shared == -1 else human_size(shared),
        "Size": human_size_precision(size),
        "Tag": tag,
        "UniqueSize": "N/A" if shared == -1 else human_size(size - shared),
        "VirtualSize": human_size(size),
    }


def rows(
    images: list[dict[str, Any]], trunc: bool = True, digests: bool = False
) -> list[dict[str, str]]:
    """docker's imageFormatTaggedAndDigest: tags per repository, digests beside them."""
    out: list[dict[str, str]] = []
    for image in images:
        if is_dangling(image):
            out.append(_row(image, NONE, NONE, NONE, trunc))
            continue
        tags: dict[str, list[str]] = {}
        for ref in image.get("RepoTags") or []:
            repo, tag = split_tag(ref)
            if tag:
                tags.setdefault(repo, []).append(tag)
        by_repo: dict[str, list[str]] = {}
        for ref in image.get("RepoDigests") or []:
            repo, sep, digest = ref.partition("@")
            if sep:
                by_repo.setdefault(repo, []).append(digest)
        for repo, repo_tags in tags.items():
            repo_digests = by_repo.pop(repo, []) if digests else []
            by_repo.pop(repo, None)
            for tag in repo_tags:
                for digest in repo_digests or [NONE]:
                    out.append(_row(image, repo, tag, digest, trunc))
        for repo, repo_digests in by_repo.items():
            for digest in repo_digests if digests else [""]:
                out.append(_row(image, repo, NONE, digest, trunc))
    return out


def run(ctx: CliContext, argv: list[str], prog: str = "images") -> int:
    p = parser(prog, "List images")
    p.add_argument("reference", nargs="?", metavar="REPOSITORY[:TAG]")
    p.add_argument("-a", "--all", action="store_true", help="show all images")
    p.add_argument("-q", "--quiet", action="store_true", help="only show image IDs")
    p.add_argument("--no-trunc", action="store_true", help="don't truncate output")
    p.add_argument("--digests", action="store_true", help="show digests")
    p.add_argument("-f", "--filter", action="append", default=[], help="filter output")
    add_format(p, short=False)
    ns = p.parse_args(argv)
    filters = parse_filters(ns.filter)
    if ns.reference:
        filters.setdefault("reference", []).append(ns.reference)
    images = ctx.client().images(all=ns.all, filters=filters)
    if ns.quiet:
        fmt = "{{.ID}}"
    elif ns.format:
        fmt = ns.format
    else:
        fmt = DIGESTS_FORMAT if ns.digests else DEFAULT_FORMAT
    digests = ns.digests or "{{.Digest}}" in fmt.replace(" ", "")
    print_formatted(fmt, rows(images, trunc=not ns.no_trunc, digests=digests), HEADERS)
    return 0
