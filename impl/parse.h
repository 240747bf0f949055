/* parse.h: the command language: words split like a POSIX shell, `|` pipes, `;` and newlines
 * separate pipelines. No expansions, redirections or control operators: those are syntax
 * errors, so a script never silently means something else than it says. */
#ifndef TR_PARSE_H
#define TR_PARSE_H

#include <stddef.h>

typedef struct {
    char **words; /* words[0] is the command name */
    size_t nwords;
} tr_command;

typedef struct {
    tr_command *commands; /* stdout of commands[i] is the stdin of commands[i + 1] */
    size_t ncommands;
} tr_pipeline;

typedef struct {
    tr_pipeline *pipelines; /* run one after the other */
    size_t npipelines;
} tr_script;

/* Parse `len` bytes of `src`. Returns 0 with *out filled, -1 on a syntax error (message in
 * err, *out empty), -2 on ENOMEM. */
int tr_parse(const char *src, size_t len, tr_script *out, char *err, size_t errlen);
void tr_script_free(tr_script *script);

#endif
