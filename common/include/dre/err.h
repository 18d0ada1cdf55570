// err.h -- the one error enum of DRE, generated from DRE_ERR_MAP.
#ifndef DRE_ERR_H
#define DRE_ERR_H

#define DRE_ERR_MAP(XX)                                                       \
	XX(NOMEM, "out of memory")                                            \
	XX(INVAL, "invalid argument")                                         \
	XX(NOTFOUND, "not found")                                             \
	XX(EXISTS, "already exists")                                          \
	XX(CONFLICT, "state conflict")                                        \
	XX(PARSE, "malformed input")                                          \
	XX(TOOBIG, "too large")                                               \
	XX(STORE, "storage failure")                                          \
	XX(BUS, "event bus failure")                                          \
	XX(RPC, "rpc failure")                                                \
	XX(TIMEOUT, "timed out")                                              \
	XX(UNAVAIL, "dependency unavailable")                                 \
	XX(CODEC, "encoding failure")                                         \
	XX(CONFIG, "configuration error")                                     \
	XX(IO, "i/o error")                                                   \
	XX(AUTH, "authentication failed")                                     \
	XX(FORBIDDEN, "not allowed")                                          \
	XX(CLOSED, "closed")

typedef enum {
	DRE_OK = 0,
#define DRE_ERR_ENUM(name, msg) DRE_E##name,
	DRE_ERR_MAP(DRE_ERR_ENUM)
#undef DRE_ERR_ENUM
} dre_err;

// dre_strerror returns a static description of err.
const char *dre_strerror(dre_err err);

#endif
