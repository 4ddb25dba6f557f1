// berthd puts every instance in a user namespace cut from the `berth` user's subordinate
// ids (docs/threat-model.md); tests that start a berthd make sure that user exists.
#pragma once

namespace berth::testing {

// Runs scripts/berth_user.sh (idempotent; creates the user and its /etc/subuid and
// /etc/subgid ranges when missing). Fails the test when it fails.
void EnsureBerthUser();

}  // namespace berth::testing
