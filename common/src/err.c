// err.c -- dre_strerror, generated from the same DRE_ERR_MAP as the enum.
#include "dre/err.h"

const char *
dre_strerror(dre_err err)
{
	switch (err) {
	case DRE_OK:
		return "ok";
#define DRE_ERR_STR(name, msg)                                                \
	case DRE_E##name:                                                     \
		return msg;
		DRE_ERR_MAP(DRE_ERR_STR)
#undef DRE_ERR_STR
	}
	return "unknown error";
}
