// coordinator/studies/durable_sealing.cc
#include "coordinator/studies/durable_sealing.h"

#include <nlohmann/json.hpp>

#include "common/status_macros.h"

namespace samverka::coordinator {

void MakeSealingDurable(SecureRound::Setup* setup, SealedSumStore* sealed_store, StateStore* store,
                        const std::string& federation_id, const std::string& study_id) {
  const int64_t round = setup->round;
  const std::string digest = setup->model_digest;
  auto details = [round, study_id](nlohmann::json more) {
    more["round"] = round;
    if (!study_id.empty()) more["study"] = study_id;
    return more;
  };
  setup->seal = [=](const SealedSum& sealed) {
    SV_RETURN_IF_ERROR(sealed_store->Save(sealed));
    return store->Audit("secure_sum_sealed", federation_id,
                        details({{"model_digest", sealed.model_digest},
                                 {"instance", sealed.instance},
                                 {"contributors", sealed.contributors.size()}}));
  };
  setup->on_consent = [=, cohort = setup->cohort](uint32_t participant,
                                                  const security::SecretBytes& seed) {
    SV_RETURN_IF_ERROR(sealed_store->SaveConsent(digest, participant, seed));
    return store->Audit("secure_consent", cohort[participant - 1],
                        details(nlohmann::json::object()));
  };
}

}  // namespace samverka::coordinator
