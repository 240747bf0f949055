/* module.h: per-module state shared by the types of teardown_ref. */
#ifndef TR_MODULE_H
#define TR_MODULE_H

#include "core.h"

typedef struct {
    PyObject *result_type;
    PyObject *scripted_type;
    PyObject *bash_type;
    tr_life *life; /* this interpreter lifetime; its exit flag is set by our atexit callback */
} tr_state;

extern PyType_Spec tr_scripted_spec;
extern PyType_Spec tr_bash_spec;

#endif
