"""Why a simulator control operation failed; ``status`` is the control API's HTTP status."""

from __future__ import annotations


class SimulatorError(Exception):
    """Bad input to a control operation (400)."""

    status = 400


class UnknownMachineError(SimulatorError, LookupError):
    """No machine was declared or deployed at that (address, port) (404)."""

    status = 404


class MachineStateError(SimulatorError):
    """The machine cannot do that now: dead, not deployed, never connected (409)."""

    status = 409


class DeployError(SimulatorError):
    """Deployment failed as SSH would: bad credentials, machine unreachable. The control
    API answers 200 ``{"success": false, "error": ...}``, like the node's deployer expects."""

    status = 200
