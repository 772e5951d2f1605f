"""Which parties the simulated participant hosts, and which of them each ledger user may act as.

The seed's model is custodial: every party the simulator sees (the app party, every funded
subscriber) is hosted on this one participant and every user has CanActAs for it, as the
operator of the original deployment granted. Tests take that away party by party
(`host_elsewhere`, `revoke`) to see what a real node does then:

- the Ledger API's authorization layer refuses a submission acting, or a read filtering,
  for a party the user has no right for: PERMISSION_DENIED, InsufficientPermission (7,
  HTTP 403), its cause redacted because the category is security sensitive
  (digital-asset/canton .../ledger/api/auth/Authorizer.scala, `AuthorizationChecksErrors`);
- routing refuses a submitter this participant cannot submit for on any synchronizer:
  NO_SYNCHRONIZER_ON_WHICH_ALL_SUBMITTERS_CAN_SUBMIT (NotAllowed), and a party no
  synchronizer knows: UNKNOWN_SUBMITTERS, both InvalidGivenCurrentSystemStateResourceMissing
  (11, HTTP 404) (digital-asset/canton community/participant/src/main/scala/com/
  digitalasset/canton/participant/sync/TransactionRoutingError.scala, `TopologyErrors`);
- a participant's ACS holds no contract of a party it does not host;
- `GET /v2/parties…` needs admin claims (PartyManagementServiceAuthorization.scala:
  `requireIdpAdminClaimsAndMatchingRequestIdpId`); a user may always read its own rights
  (UserManagementServiceAuthorization.scala).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from pipeline.simulator.model import Rejection, digest

REDACTED = "An error occurred. Please contact the operator and inquire about the request {correlation} with tid {trace}"


class Hosting:
    """Parties hosted here or elsewhere, and the CanActAs rights taken away per user."""

    def __init__(self, app_party: str, admins: Iterable[str]) -> None:
        self.participant_id = "PAR::app-provider::1220" + digest("participant", app_party)[:64]
        self.admins = set(admins)  # users with ParticipantAdmin
        self.elsewhere: set[str] = set()  # parties another participant hosts
        self.revoked: dict[str, set[str]] = defaultdict(set)  # user -> parties without CanActAs
        self._known: dict[str, None] = {app_party: None}  # insertion-ordered set

    def see(self, parties: Iterable[str]) -> None:
        """Parties that exist on the network (allocated when the seed funds or features them)."""
        for party in parties:
            self._known.setdefault(party, None)

    def known(self) -> list[str]:
        return list(self._known)

    def hosted(self, party: str) -> bool:
        return party in self._known and party not in self.elsewhere

    def can_act(self, user: str, party: str) -> bool:
        """CanActAs: granted for every hosted party (the custodial seed) unless revoked."""
        return party in self._known and party not in self.revoked[user]

    def rights(self, user: str) -> list[dict[str, object]]:
        """`ListUserRightsResponse.rights` of ``user``."""
        out: list[dict[str, object]] = []
        if user in self.admins:
            out.append({"kind": {"ParticipantAdmin": {"value": {}}}})
        out += [{"kind": {"CanActAs": {"value": {"party": p}}}} for p in self._known if self.can_act(user, p)]
        return out

    def check_submitters(self, user: str, act_as: Iterable[str]) -> None:
        """The authorization check, then routing: the checks Canton makes before interpretation."""
        parties = list(act_as)
        if any(not self.can_act(user, p) for p in parties):
            raise permission_denied()
        unknown = [p for p in parties if p not in self._known]
        if unknown:
            raise Rejection(
                "UNKNOWN_SUBMITTERS",
                "The participant or the synchronizer does not know the submitters",
                11,
                {"unknownSubmitters": ",".join(unknown)},
            )
        elsewhere = [p for p in parties if not self.hosted(p)]
        if elsewhere:
            raise Rejection(
                "NO_SYNCHRONIZER_ON_WHICH_ALL_SUBMITTERS_CAN_SUBMIT",
                "This participant cannot submit as the given submitter on any connected synchronizer",
                11,
                {"unknownSubmitter": elsewhere[0]},
            )

    def check_readers(self, user: str, parties: Iterable[str | None]) -> None:
        """Reads filter by party: each needs a right (CanActAs implies CanReadAs)."""
        if any(p is not None and not self.can_act(user, p) for p in parties):
            raise permission_denied()


def permission_denied() -> Rejection:
    """PERMISSION_DENIED as Canton answers it: the cause is redacted (security-sensitive category)."""
    return Rejection("PERMISSION_DENIED", REDACTED, 7, redacted=True)
