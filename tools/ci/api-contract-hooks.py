"""Schemathesis hooks of tools/ci/api-contract.sh: which bearer token each
operation is called with.  The screening and training routes are a
candidate's (anyone else gets 403 and the routes' answers would go
untested); everything else runs as an annotator with work to lease.  The
tokens come from the environment, as the script created them."""
import os

import schemathesis

CANDIDATE_PATHS = r"^/v1/(screening|training)"


def _bearer(case, token):
    if case.headers is None:
        case.headers = {}
    case.headers["Authorization"] = f"Bearer {token}"


@schemathesis.auth(refresh_interval=None, retry_on=[]).apply_to(path_regex=CANDIDATE_PATHS)
class CandidateToken:
    def get(self, case, context):
        return os.environ["API_CONTRACT_CANDIDATE_TOKEN"]

    def set(self, case, data, context):
        _bearer(case, data)


@schemathesis.auth(refresh_interval=None, retry_on=[]).skip_for(path_regex=CANDIDATE_PATHS)
class AnnotatorToken:
    def get(self, case, context):
        return os.environ["API_CONTRACT_ANNOTATOR_TOKEN"]

    def set(self, case, data, context):
        _bearer(case, data)
