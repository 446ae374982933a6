"""`min-tags`: a new image must arrive with a minimum set of tags.

A push of a digest that no tag of the repository points at yet must carry at least
`min_tags` distinct tags, and for each regex in `required` at least one tag that matches it
whole. Pushes that add tags to an image that is already tagged, and deletions, are not
restricted.

The Python port of policies/min-tags: the same decisions, word for word.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import tagpolicy_guest
from tagpolicy_guest import U32, Findings, Patterns, Request, repository
from tagpolicy_guest.text import code_list


@dataclass
class Settings:
    min_tags: U32 = 1
    required: Patterns = field(default_factory=Patterns)


class MinTags(tagpolicy_guest.Policy):
    # A copy of ../../min-tags/metadata.json, checked by the tests: componentize-py reads nothing
    # outside this folder.
    NAME = "min-tags"
    VERSION = "0.1.0"
    DESCRIPTION = "A new image must arrive with at least N tags, including one matching each required pattern"
    SETTINGS_EXAMPLE = r'{"min_tags":2,"required":["\\d+\\.\\d+\\.\\d+"]}'
    SETTINGS = Settings
    settings: Settings

    def evaluate(self, request: Request, findings: Findings) -> None:
        push = request.push()
        if push is None or repository.tags_of(push.digest):
            return
        tags = sorted({change.tag for change in push.tags}, key=lambda tag: tag.encode())
        got = code_list(tags)
        wanted = self.settings.min_tags
        if len(tags) < wanted:
            findings.deny_request(
                f"a new image must arrive with at least {wanted} tags; this push has {len(tags)} ({got})"
            )
        for pattern in self.settings.required:
            if not any(pattern.matches(tag) for tag in tags):
                findings.deny_request(f"a new image must arrive with a tag matching `{pattern}`; this push has {got}")


Policy = tagpolicy_guest.export(MinTags)
