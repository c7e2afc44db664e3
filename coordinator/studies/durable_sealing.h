// coordinator/studies/durable_sealing.h
#pragma once

#include <string>

#include "coordinator/sealed_sum_store.h"
#include "coordinator/secure_round.h"
#include "coordinator/state_store.h"

namespace samverka::coordinator {

// Makes a secure round's sealed sum and consent seeds durable before
// anything else: the sealed sum (in `sealed_store`) before any site is
// asked to release it, each consent seed before it counts, each audited in
// `store`. A restart then completes the round from them instead of running
// it again. Sets setup->seal and setup->on_consent; `study_id` (empty for a
// single-run federation) is named in the audit rows. Both stores must
// outlive the round.
void MakeSealingDurable(SecureRound::Setup* setup, SealedSumStore* sealed_store, StateStore* store,
                        const std::string& federation_id, const std::string& study_id);

}  // namespace samverka::coordinator
