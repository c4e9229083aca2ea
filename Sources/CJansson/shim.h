#ifndef NXC_CJANSSON_SHIM_H
#define NXC_CJANSSON_SHIM_H
#include <jansson.h>
/* jansson's accessors are macros or inline functions; give Swift plain functions. */
static inline int nxc_json_is_object(const json_t *j) { return json_is_object(j); }
static inline int nxc_json_is_array(const json_t *j) { return json_is_array(j); }
static inline int nxc_json_is_string(const json_t *j) { return json_is_string(j); }
static inline void nxc_json_decref(json_t *j) { json_decref(j); }
#endif
