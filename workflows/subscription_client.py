"""Client-side helpers of the subscription workflows (the API's): start one, tell it to look again, replay it.

Never imported by workflow code: these functions talk to the Temporal server.
"""

from __future__ import annotations

from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.service import RPCError, RPCStatusCode

from activities.webhook_types import WebhookPolicy
from danvan.waits import rpc_timeout
from eventstore.models import FeedCursor

from .shared import TASK_QUEUE
from .subscription import SubscriptionStart, SubscriptionWorkflow, subscription_workflow_id


class SubscriptionNotRunning(LookupError):
    """The subscription has no running workflow (it ended: the subscription was deleted)."""


async def start_subscription(client: Client, subscription_id: str, cursor: FeedCursor, policy: WebhookPolicy,
                             *, task_queue: str = TASK_QUEUE) -> None:
    """Start delivering `subscription_id` from the events after `cursor`."""
    await client.start_workflow(
        SubscriptionWorkflow.run,
        SubscriptionStart(subscription_id=subscription_id, cursor=cursor, policy=policy),
        id=subscription_workflow_id(subscription_id),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        rpc_timeout=rpc_timeout(),
    )


async def look_again(client: Client, subscription_id: str) -> bool:
    """Tell the workflow the subscription changed; False when it is not running."""
    handle = client.get_workflow_handle(subscription_workflow_id(subscription_id))
    try:
        await handle.signal(SubscriptionWorkflow.look_again, rpc_timeout=rpc_timeout())
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def replay(client: Client, subscription_id: str, cursor: FeedCursor) -> None:
    """Move the workflow's cursor to `cursor`; SubscriptionNotRunning when it has ended."""
    handle = client.get_workflow_handle_for(SubscriptionWorkflow.run, subscription_workflow_id(subscription_id))
    try:
        await handle.execute_update(SubscriptionWorkflow.replay, cursor, rpc_timeout=rpc_timeout())
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise SubscriptionNotRunning(subscription_id) from None
        raise
    except WorkflowUpdateFailedError as exc:
        raise SubscriptionNotRunning(f"{subscription_id}: {exc.cause or exc}") from None
