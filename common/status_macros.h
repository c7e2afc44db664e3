// common/status_macros.h
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// Debian's Abseil (20220623) has Status and StatusOr but not Abseil's own
// propagation macros; these two are the project's, defined once here.

#define SV_STATUS_CONCAT_INNER_(a, b) a##b
#define SV_STATUS_CONCAT_(a, b) SV_STATUS_CONCAT_INNER_(a, b)

// Returns from the enclosing function if `expr` (an absl::Status) is not OK.
#define SV_RETURN_IF_ERROR(expr)                   \
  do {                                             \
    ::absl::Status sv_status_ = (expr);            \
    if (!sv_status_.ok()) return sv_status_;       \
  } while (false)

// Evaluates `rexpr` (an absl::StatusOr<T>); on error returns its status,
// otherwise moves the value into `lhs`, which may be a declaration.
#define SV_ASSIGN_OR_RETURN(lhs, rexpr) \
  SV_ASSIGN_OR_RETURN_IMPL_(SV_STATUS_CONCAT_(sv_statusor_, __LINE__), lhs, rexpr)

#define SV_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                              \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = std::move(statusor).value()
