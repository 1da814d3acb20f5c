/*
 * router_lua: the Lua source of the router's live-state script, embedded at build time as a C
 * string. Only router_state.c runs it. Pure: no I/O; thread-safe.
 */
#ifndef ROUTER_LUA_H
#define ROUTER_LUA_H

/* The script's source (static storage, NUL-terminated). */
const char *router_lua_source(void);

#endif
