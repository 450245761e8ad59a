/* vox_gateway: STUB until the payments piece lands (vox_gateway.h). */
#include "vox_gateway.h"

#include <stdlib.h>

struct vox_gateway {
	int unused;
};

vox_gateway_t *vox_gateway_new(const vox_gateway_conf_t *conf, vox_error_t *err)
{
	(void)conf, (void)err;
	return calloc(1, sizeof(struct vox_gateway));
}

void vox_gateway_destroy(vox_gateway_t *gw)
{
	free(gw);
}
