"""PUBLISH stage: targets (the local backend or E2B cloud), the plan, the jobs and the records.

`targets` connects to a target; `plan` decides before any network what to build; `publisher`
runs one `job` per version through the e2b SDK (`sdk`), within `limits`; `records` writes the
content tag, the marker of a build in flight and the publish record; `channels` moves the tag
consumers pin (promote, rollback).
"""
