"""Schemathesis hooks of tools/ci/api-contract.sh: which bearer token each
operation is called with.  The screening and training routes are a
candidate's (anyone else gets 403 and the routes' answers would go
untested); everything else runs as the user of the run (an annotator with
work to lease, a validator with validation work, then the candidate).  The
tokens come from the environment, as the script created them.  And a lease
request does not long-poll (see before_call)."""
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
class RunToken:
    def get(self, case, context):
        return os.environ["API_CONTRACT_TOKEN"]

    def set(self, case, data, context):
        _bearer(case, data)


# Lease ids this server never issued, each sent to heartbeat, release and
# submit in the examples phase (the generator seldom makes them): all are
# the same 409 lease_lost as any unknown lease.  The overlong one was a 404
# once, as was a NUL (decoded from %00, it cut the path short).  The empty
# one and an encoded "/" cannot be sent from here (the path is not
# re-encoded, and "//" becomes "/"); test_dispatcher_leases sends them.
NEVER_ISSUED = ["a" * 128, "a" * 1000, "\u00e9" * 100, "x\x00y", "\x00", "no-such-lease",
                "00000000-0000-4000-8000-000000000001"]


@schemathesis.hook
def before_add_examples(context, examples):
    operation = context.operation
    if operation is None or not operation.path.startswith("/v1/leases/{lease_id}/"):
        return
    for lease_id in NEVER_ISSUED:
        if operation.path.endswith("/submit"):
            examples.append(operation.Case(path_parameters={"lease_id": lease_id},
                                           body={"description": "A plate of curry rice."},
                                           media_type="application/json"))
        else:
            examples.append(operation.Case(path_parameters={"lease_id": lease_id}))


@schemathesis.hook
def before_call(context, case, kwargs):
    """A lease request with a valid wait_s above 0 is sent with 0.

    With nothing to lease (the candidate has no exam work), every such
    request would wait its wait_s, up to 30 s: a run as the candidate took
    52 minutes so.  The wait itself is test_dispatcher_leases' to test; here
    an empty queue answers its 204 at once.  Invalid values (negative, over
    30, not an integer) go out as generated, for their 400."""
    if case.operation.path != "/v1/leases" or case.method.upper() != "POST" or not isinstance(case.body, dict):
        return
    wait = case.body.get("wait_s")
    if isinstance(wait, int) and not isinstance(wait, bool) and 0 < wait <= 30:
        case.body["wait_s"] = 0
