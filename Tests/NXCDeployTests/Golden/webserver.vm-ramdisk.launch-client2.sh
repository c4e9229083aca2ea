#!/bin/sh
# Starts node 'client2' alone (see launch.sh for the environment it reads).
here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
NXC_NODE=client2 NXC_INDEX=${NXC_INDEX:-3} NXC_MEMORY=${NXC_MEMORY:-512} exec "$here/launch.sh"
