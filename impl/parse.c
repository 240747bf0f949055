/* parse.c: a small POSIX-like word splitter with pipes and sequences. */
#include "parse.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

typedef struct {
    const char *src;
    size_t len, pos;
    char *err;
    size_t errlen;
    tr_script *script;
    tr_pipeline cur_pipe;
    tr_command cur_cmd;
} parser;

/* Each `push` returns 0, or -2 on ENOMEM. */
static int push_word(tr_command *cmd, char *word)
{
    char **grown = realloc(cmd->words, (cmd->nwords + 1) * sizeof(char *));
    if (grown == NULL) {
        free(word);
        return -2;
    }
    cmd->words = grown;
    cmd->words[cmd->nwords++] = word;
    return 0;
}

static void free_command(tr_command *cmd)
{
    for (size_t i = 0; i < cmd->nwords; i++) {
        free(cmd->words[i]);
    }
    free(cmd->words);
    cmd->words = NULL;
    cmd->nwords = 0;
}

static void free_pipeline(tr_pipeline *pipe)
{
    for (size_t i = 0; i < pipe->ncommands; i++) {
        free_command(&pipe->commands[i]);
    }
    free(pipe->commands);
    pipe->commands = NULL;
    pipe->ncommands = 0;
}

void tr_script_free(tr_script *script)
{
    for (size_t i = 0; i < script->npipelines; i++) {
        free_pipeline(&script->pipelines[i]);
    }
    free(script->pipelines);
    script->pipelines = NULL;
    script->npipelines = 0;
}

static int syntax_error(parser *p, const char *fmt, const char *detail)
{
    snprintf(p->err, p->errlen, fmt, detail);
    return -1;
}

/* Ends the current command: 0, -1 if it is empty and `required`, -2 on ENOMEM. */
static int end_command(parser *p, bool required, const char *after)
{
    if (p->cur_cmd.nwords == 0) {
        return required ? syntax_error(p, "syntax error: missing command %s", after) : 0;
    }
    tr_command *grown =
        realloc(p->cur_pipe.commands, (p->cur_pipe.ncommands + 1) * sizeof(tr_command));
    if (grown == NULL) {
        return -2;
    }
    p->cur_pipe.commands = grown;
    p->cur_pipe.commands[p->cur_pipe.ncommands++] = p->cur_cmd;
    p->cur_cmd = (tr_command){0};
    return 0;
}

/* Ends the current pipeline at a separator. An empty pipeline is an error before `;` only. */
static int end_pipeline(parser *p, bool at_semicolon)
{
    bool pending_pipe = p->cur_pipe.ncommands > 0;
    int rc = end_command(p, pending_pipe, "after '|'");
    if (rc != 0) {
        return rc;
    }
    if (p->cur_pipe.ncommands == 0) {
        return at_semicolon ? syntax_error(p, "syntax error: unexpected '%s'", ";") : 0;
    }
    tr_pipeline *grown =
        realloc(p->script->pipelines, (p->script->npipelines + 1) * sizeof(tr_pipeline));
    if (grown == NULL) {
        return -2;
    }
    p->script->pipelines = grown;
    p->script->pipelines[p->script->npipelines++] = p->cur_pipe;
    p->cur_pipe = (tr_pipeline){0};
    return 0;
}

/* Reads one word starting at p->pos. Returns 0, -1 on a syntax error, -2 on ENOMEM. */
static int read_word(parser *p)
{
    tr_buf word = {0};
    if (tr_buf_append(&word, "", 0) != 0) {
        return -2;
    }
    while (p->pos < p->len) {
        char c = p->src[p->pos];
        if (c == ' ' || c == '\t' || c == '\n' || c == ';' || c == '|' || c == '&' || c == '<' ||
            c == '>' || c == '(' || c == ')' || c == '`') {
            break;
        }
        p->pos++;
        int rc = 0;
        if (c == '\\') {
            if (p->pos < p->len && p->src[p->pos] == '\n') {
                p->pos++; /* line continuation */
            } else if (p->pos < p->len) {
                rc = tr_buf_append(&word, &p->src[p->pos++], 1);
            }
        } else if (c == '\'') {
            const char *end = memchr(p->src + p->pos, '\'', p->len - p->pos);
            if (end == NULL) {
                tr_buf_free(&word);
                return syntax_error(p, "syntax error: unterminated %s quote", "single");
            }
            rc = tr_buf_append(&word, p->src + p->pos, (size_t)(end - (p->src + p->pos)));
            p->pos = (size_t)(end - p->src) + 1;
        } else if (c == '"') {
            bool closed = false;
            while (rc == 0 && p->pos < p->len) {
                char d = p->src[p->pos++];
                if (d == '"') {
                    closed = true;
                    break;
                }
                if (d == '\\' && p->pos < p->len) {
                    char e = p->src[p->pos];
                    if (e == '"' || e == '\\' || e == '$' || e == '`') {
                        d = e;
                        p->pos++;
                    } else if (e == '\n') {
                        p->pos++;
                        continue;
                    }
                }
                rc = tr_buf_append(&word, &d, 1);
            }
            if (rc == 0 && !closed) {
                tr_buf_free(&word);
                return syntax_error(p, "syntax error: unterminated %s quote", "double");
            }
        } else {
            rc = tr_buf_append(&word, &c, 1);
        }
        if (rc != 0) {
            tr_buf_free(&word);
            return -2;
        }
    }
    return push_word(&p->cur_cmd, word.data);
}

int tr_parse(const char *src, size_t len, tr_script *out, char *err, size_t errlen)
{
    *out = (tr_script){0};
    parser p = {.src = src, .len = len, .err = err, .errlen = errlen, .script = out};
    int rc = 0;
    while (rc == 0 && p.pos < p.len) {
        char c = src[p.pos];
        if (c == ' ' || c == '\t') {
            p.pos++;
        } else if (c == '#' && p.cur_cmd.nwords == 0) {
            while (p.pos < p.len && src[p.pos] != '\n') {
                p.pos++;
            }
        } else if (c == '\n' || c == ';') {
            p.pos++;
            rc = end_pipeline(&p, c == ';');
        } else if (c == '|') {
            p.pos++;
            if (p.pos < p.len && src[p.pos] == '|') {
                rc = syntax_error(&p, "syntax error: unsupported operator '%s'", "||");
            } else {
                rc = end_command(&p, true, "before '|'");
            }
        } else if (c == '&' || c == '<' || c == '>' || c == '(' || c == ')' || c == '`') {
            char op[2] = {c, '\0'};
            rc = syntax_error(&p, "syntax error: unsupported operator '%s'", op);
        } else {
            rc = read_word(&p);
        }
    }
    if (rc == 0) {
        rc = end_pipeline(&p, false);
    }
    if (rc != 0) {
        free_command(&p.cur_cmd);
        free_pipeline(&p.cur_pipe);
        tr_script_free(out);
        if (rc == -2) {
            snprintf(err, errlen, "out of memory");
        }
    }
    return rc;
}
