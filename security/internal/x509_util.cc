// security/internal/x509_util.cc
#include "security/internal/x509_util.h"

#include <arpa/inet.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include <climits>
#include <cstring>
#include <ctime>

#include "common/status_macros.h"

namespace samverka::security::internal {
namespace {

// Never prompt for a passphrase: encrypted keys simply fail to load.
int NoPassphrase(char*, int, int, void*) { return 0; }

absl::StatusOr<BioPtr> MemoryBioOf(const void* data, size_t size,
                                   std::string_view what) {
  if (size == 0)
    return absl::InvalidArgumentError(std::string(what) + " is empty");
  if (size > INT_MAX) {
    return absl::InvalidArgumentError(std::string(what) + " is too large");
  }
  BioPtr bio(BIO_new_mem_buf(data, static_cast<int>(size)));
  if (bio == nullptr) return OpenSslInternalError("BIO_new_mem_buf");
  return bio;
}

absl::StatusOr<std::string> WritePem(int (*write)(BIO*, void*), void* object,
                                     std::string_view what) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || write(bio.get(), object) != 1) {
    return OpenSslInternalError("cannot PEM-encode the " + std::string(what));
  }
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(size));
}

absl::Status BadPem(std::string_view what) {
  return OpenSslError(absl::StatusCode::kInvalidArgument,
                      std::string(what) + " is not valid PEM");
}

bool IsDnsLabelCharacter(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '-' || c == '_';
}

absl::Status ValidateDnsName(std::string_view name) {
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError("'" + std::string(name) +
                                      "' is neither an IP address nor a valid "
                                      "DNS name: " +
                                      std::string(why));
  };
  if (name.empty()) return bad("it is empty");
  if (name.size() > 253) return bad("it is longer than 253 characters");
  if (name.find_first_not_of("0123456789.") == std::string_view::npos) {
    return bad("it looks like a malformed IPv4 address");
  }
  size_t start = 0;
  while (true) {
    const size_t dot = name.find('.', start);
    const std::string_view label =
        name.substr(start, dot == std::string_view::npos ? dot : dot - start);
    if (label.empty()) return bad("it has an empty label");
    if (label.size() > 63) return bad("a label is longer than 63 characters");
    for (char c : label) {
      if (!IsDnsLabelCharacter(c)) {
        return bad("only letters, digits, '-', '_' and '.' are allowed");
      }
    }
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> CertificateToPem(X509* certificate) {
  return WritePem(
      [](BIO* bio, void* x) {
        return PEM_write_bio_X509(bio, static_cast<X509*>(x));
      },
      certificate, "certificate");
}

absl::StatusOr<std::string> CsrToPem(X509_REQ* csr) {
  return WritePem(
      [](BIO* bio, void* x) {
        return PEM_write_bio_X509_REQ(bio, static_cast<X509_REQ*>(x));
      },
      csr, "certificate signing request");
}

absl::StatusOr<std::string> CrlToPem(X509_CRL* crl) {
  return WritePem(
      [](BIO* bio, void* x) {
        return PEM_write_bio_X509_CRL(bio, static_cast<X509_CRL*>(x));
      },
      crl, "CRL");
}

absl::StatusOr<SecretBytes> PrivateKeyToPem(EVP_PKEY* key) {
  // A secure-memory BIO wipes its buffers when they are freed or grown.
  BioPtr bio(BIO_new(BIO_s_secmem()));
  if (bio == nullptr ||
      PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr,
                               nullptr) != 1) {
    return OpenSslInternalError("cannot PEM-encode a private key");
  }
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return SecretBytes::CopyFrom(
      std::string_view(data, static_cast<size_t>(size)));
}

absl::StatusOr<X509Ptr> ParseCertificatePem(std::string_view pem,
                                            std::string_view what) {
  SV_ASSIGN_OR_RETURN(BioPtr bio, MemoryBioOf(pem.data(), pem.size(), what));
  X509Ptr certificate(
      PEM_read_bio_X509(bio.get(), nullptr, NoPassphrase, nullptr));
  if (certificate == nullptr) return BadPem(what);
  ERR_clear_error();
  return certificate;
}

absl::StatusOr<X509ReqPtr> ParseCsrPem(std::string_view pem,
                                       std::string_view what) {
  SV_ASSIGN_OR_RETURN(BioPtr bio, MemoryBioOf(pem.data(), pem.size(), what));
  X509ReqPtr csr(
      PEM_read_bio_X509_REQ(bio.get(), nullptr, NoPassphrase, nullptr));
  if (csr == nullptr) return BadPem(what);
  ERR_clear_error();
  return csr;
}

absl::StatusOr<X509CrlPtr> ParseCrlPem(std::string_view pem,
                                       std::string_view what) {
  SV_ASSIGN_OR_RETURN(BioPtr bio, MemoryBioOf(pem.data(), pem.size(), what));
  X509CrlPtr crl(
      PEM_read_bio_X509_CRL(bio.get(), nullptr, NoPassphrase, nullptr));
  if (crl == nullptr) return BadPem(what);
  ERR_clear_error();
  return crl;
}

absl::StatusOr<EvpPkeyPtr> ParsePrivateKeyPem(const SecretBytes& pem,
                                              std::string_view what) {
  SV_ASSIGN_OR_RETURN(BioPtr bio, MemoryBioOf(pem.data(), pem.size(), what));
  EvpPkeyPtr key(
      PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr));
  if (key == nullptr) {
    return OpenSslError(
        absl::StatusCode::kInvalidArgument,
        std::string(what) + " is not an unencrypted PEM private key");
  }
  return key;
}

absl::StatusOr<EvpPkeyPtr> GenerateP256Key() {
  EvpPkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (key == nullptr)
    return OpenSslInternalError("P-256 key generation failed");
  return key;
}

absl::Status CheckSiteKeyType(EVP_PKEY* key) {
  if (EVP_PKEY_is_a(key, "ED25519")) return absl::OkStatus();
  if (EVP_PKEY_is_a(key, "EC")) {
    char group[64] = {};
    size_t length = 0;
    if (EVP_PKEY_get_group_name(key, group, sizeof(group), &length) == 1 &&
        (std::strcmp(group, "prime256v1") == 0 ||
         std::strcmp(group, "P-256") == 0)) {
      return absl::OkStatus();
    }
    ERR_clear_error();
  }
  return absl::InvalidArgumentError(
      "unsupported key type: Samverka needs ECDSA P-256 (or Ed25519) keys");
}

absl::StatusOr<Asn1IntegerPtr> RandomSerial() {
  uint8_t bytes[16];
  SV_RETURN_IF_ERROR(RandomBytes(bytes));
  bytes[0] |= 0x01;  // never zero (RFC 5280 wants a positive serial)
  BignumPtr value(BN_bin2bn(bytes, sizeof(bytes), nullptr));  // unsigned
  if (value == nullptr) return OpenSslInternalError("BN_bin2bn");
  Asn1IntegerPtr serial(BN_to_ASN1_INTEGER(value.get(), nullptr));
  if (serial == nullptr) return OpenSslInternalError("BN_to_ASN1_INTEGER");
  return serial;
}

std::string SerialToHex(const ASN1_INTEGER* serial) {
  BignumPtr value(ASN1_INTEGER_to_BN(serial, nullptr));
  if (value == nullptr) return "";
  if (BN_is_zero(value.get())) return "00";
  char* hex = BN_bn2hex(value.get());
  if (hex == nullptr) return "";
  std::string result(hex);
  OPENSSL_free(hex);
  return result;
}

absl::StatusOr<Asn1IntegerPtr> SerialFromHex(std::string_view hex) {
  if (hex.empty() || hex.size() > 64 ||
      hex.find_first_not_of("0123456789abcdefABCDEF") !=
          std::string_view::npos) {
    return absl::InvalidArgumentError("serial '" + std::string(hex) +
                                      "' is not hexadecimal");
  }
  BIGNUM* raw = nullptr;
  const std::string text(hex);
  if (BN_hex2bn(&raw, text.c_str()) != static_cast<int>(text.size())) {
    BN_free(raw);
    return absl::InvalidArgumentError("serial '" + text +
                                      "' is not hexadecimal");
  }
  BignumPtr value(raw);
  Asn1IntegerPtr serial(BN_to_ASN1_INTEGER(value.get(), nullptr));
  if (serial == nullptr) return OpenSslInternalError("BN_to_ASN1_INTEGER");
  return serial;
}

absl::StatusOr<absl::Time> FromAsn1Time(const ASN1_TIME* time) {
  struct tm tm;
  std::memset(&tm, 0, sizeof(tm));
  if (time == nullptr || ASN1_TIME_to_tm(time, &tm) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError("malformed ASN.1 time");
  }
  return absl::FromTM(tm, absl::UTCTimeZone());
}

absl::Status SetAsn1Time(ASN1_TIME* out, absl::Time time) {
  if (ASN1_TIME_set(out, absl::ToTimeT(time)) == nullptr) {
    return OpenSslInternalError("ASN1_TIME_set");
  }
  return absl::OkStatus();
}

absl::StatusOr<X509NamePtr> MakeName(
    const std::vector<std::pair<int, std::string>>& entries) {
  X509NamePtr name(X509_NAME_new());
  if (name == nullptr) return OpenSslInternalError("X509_NAME_new");
  for (const auto& [nid, value] : entries) {
    if (X509_NAME_add_entry_by_NID(
            name.get(), nid, MBSTRING_UTF8,
            reinterpret_cast<const unsigned char*>(value.data()),
            static_cast<int>(value.size()), -1, 0) != 1) {
      return OpenSslError(
          absl::StatusCode::kInvalidArgument,
          std::string("invalid ") + OBJ_nid2sn(nid) + " '" + value + "'");
    }
  }
  return name;
}

absl::StatusOr<std::string> SingleNameEntry(const X509_NAME* name, int nid,
                                            std::string_view what) {
  const int index = X509_NAME_get_index_by_NID(name, nid, -1);
  if (index < 0) {
    return absl::InvalidArgumentError(std::string(what) + " has no " +
                                      OBJ_nid2sn(nid));
  }
  if (X509_NAME_get_index_by_NID(name, nid, index) >= 0) {
    return absl::InvalidArgumentError(std::string(what) +
                                      " has more than one " + OBJ_nid2sn(nid));
  }
  const ASN1_STRING* data =
      X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index));
  unsigned char* utf8 = nullptr;
  const int length = ASN1_STRING_to_UTF8(&utf8, data);
  if (length < 0) {
    return OpenSslError(
        absl::StatusCode::kInvalidArgument,
        std::string(what) + " has a malformed " + OBJ_nid2sn(nid));
  }
  std::string value(reinterpret_cast<char*>(utf8), static_cast<size_t>(length));
  OPENSSL_free(utf8);
  if (value.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError(std::string(what) + " has a NUL in its " +
                                      OBJ_nid2sn(nid));
  }
  return value;
}

std::string SubjectAltName::ToString() const {
  if (!is_ip) return "DNS:" + value;
  char text[INET6_ADDRSTRLEN] = {};
  const int family = value.size() == 4 ? AF_INET : AF_INET6;
  if (inet_ntop(family, value.data(), text, sizeof(text)) == nullptr)
    return "IP:?";
  return std::string("IP:") + text;
}

absl::StatusOr<SubjectAltName> ParseSubjectAltName(std::string_view text) {
  std::string address(text);
  if (address.size() > 2 && address.front() == '[' && address.back() == ']') {
    address = address.substr(1, address.size() - 2);
  }
  unsigned char bytes[16];
  if (inet_pton(AF_INET, address.c_str(), bytes) == 1) {
    return SubjectAltName{true, std::string(reinterpret_cast<char*>(bytes), 4)};
  }
  if (inet_pton(AF_INET6, address.c_str(), bytes) == 1) {
    return SubjectAltName{true,
                          std::string(reinterpret_cast<char*>(bytes), 16)};
  }
  SV_RETURN_IF_ERROR(ValidateDnsName(text));
  return SubjectAltName{false, std::string(text)};
}

absl::StatusOr<GeneralNamesPtr> MakeGeneralNames(
    const std::vector<SubjectAltName>& names) {
  GeneralNamesPtr result(sk_GENERAL_NAME_new_null());
  if (result == nullptr)
    return OpenSslInternalError("sk_GENERAL_NAME_new_null");
  for (const SubjectAltName& name : names) {
    ASN1_STRING* value =
        name.is_ip ? ASN1_OCTET_STRING_new() : ASN1_IA5STRING_new();
    GENERAL_NAME* general = GENERAL_NAME_new();
    if (value == nullptr || general == nullptr ||
        ASN1_STRING_set(value, name.value.data(),
                        static_cast<int>(name.value.size())) != 1) {
      ASN1_STRING_free(value);
      GENERAL_NAME_free(general);
      return OpenSslInternalError("cannot encode a subject alternative name");
    }
    GENERAL_NAME_set0_value(general, name.is_ip ? GEN_IPADD : GEN_DNS, value);
    if (sk_GENERAL_NAME_push(result.get(), general) == 0) {
      GENERAL_NAME_free(general);
      return OpenSslInternalError("sk_GENERAL_NAME_push");
    }
  }
  return result;
}

absl::Status AddConfigExtension(X509* certificate, X509* issuer, int nid,
                                const char* value) {
  X509V3_CTX context;
  X509V3_set_ctx_nodb(&context);
  X509V3_set_ctx(&context, issuer, certificate, nullptr, nullptr, 0);
  X509ExtensionPtr extension(
      X509V3_EXT_conf_nid(nullptr, &context, nid, value));
  if (extension == nullptr ||
      X509_add_ext(certificate, extension.get(), -1) != 1) {
    return OpenSslInternalError(std::string("cannot add extension ") +
                                OBJ_nid2sn(nid));
  }
  return absl::OkStatus();
}

}  // namespace samverka::security::internal
