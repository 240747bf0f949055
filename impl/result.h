/* result.h: ExecResult, the outcome of one execution (exit_code, stdout, stderr, error). */
#ifndef TR_RESULT_H
#define TR_RESULT_H

#include "core.h"

extern PyType_Spec tr_result_spec;
/* A new ExecResult, or NULL with an exception set. error NULL: None. */
PyObject *tr_result_new(PyObject *type, int exit_code, const char *out, size_t out_len,
                        const char *err, size_t err_len, const char *error);

#endif
