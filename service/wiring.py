"""The composition root: the explicit lists (ingest hooks, erasers, purgers) and the Runtime."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from sqlalchemy import Engine, select

from service.access.keys import Authenticator, bootstrap_keys
from service.access.limits import RateLimiter
from service.access.tickets import erase_tickets, purge_tickets
from service.access.tokens import SessionTokens, shared_secret
from service.analytics.engines import build_analytics, lake_for
from service.analytics.models import DailyProduct
from service.analytics.rollups import apply_inserted
from service.analytics.rollups import rebuild as rebuild_rollups
from service.db.engine import make_sessionmaker
from service.handoff.service import erase_tokens, purge_tokens
from service.identity.models import ShopperAlias, ShopperGroup
from service.identity.service import (
    erase_identity,
    link_from_events,
    purge_identity,
    rebuild_groups,
)
from service.offers.catalog import OfferCatalog
from service.offers.privacy import erase_shopper_offers, purge_offers
from service.offers.ranking import Item
from service.offers.service import OfferPolicy, OffersRuntime
from service.offers.stats import StatsCache
from service.ops.metrics import TryOnMetrics
from service.runtime import Runtime
from service.settings import Settings
from service.shoppers.erasure import Eraser
from service.shoppers.retention import Purger
from service.touchpoints.batcher import EventBatcher
from service.touchpoints.models import Event
from service.touchpoints.rejections import RejectionRecorder
from service.touchpoints.repository import erase_events, purge_events
from service.touchpoints.service import AfterInsertHook, Ingestor
from service.touchpoints.sink import DatabaseEventSink, EventSink
from service.touchpoints.spool import EventSpool
from service.tryon.catalog import CatalogService, glb_limits
from service.tryon.pipelines import ImagePipelines, PipelineFactory, render_options
from service.tryon.stream_leases import StreamLeases
from service.tryon.workers import StreamRegistry, WorkerPool
from vision.pipeline import ThreadLocalRenderers

if TYPE_CHECKING:  # imported lazily below: Redis is optional
    from redis import Redis


def ingest_hooks() -> tuple[AfterInsertHook, ...]:
    """Run in the ingest transaction on newly inserted events, in this order."""
    return (apply_inserted, link_from_events)


def erasers(settings: Settings | None = None) -> tuple[Eraser, ...]:
    """Every feature's erasure. Identity goes last: the others need the links resolved.
    The event lake's files are rewritten after the events (settings name the lake)."""
    lake = lake_for(settings or Settings())
    return (
        Eraser("events", ("events",), erase_events),
        Eraser("handoff", ("handoff_tokens",), erase_tokens),
        Eraser("offers", ("offers", "offer_impressions", "coupons"), erase_shopper_offers),
        Eraser("lake", ("lake",), lake.erase),
        Eraser("stream_tickets", ("stream_tickets",), erase_tickets),
        Eraser("identity", ("shopper_aliases", "analytics_shopper_groups"), erase_identity),
    )


def purgers(settings: Settings | None = None) -> tuple[Purger, ...]:
    """Every feature's retention purge (rollups hold no shopper id and stay)."""
    lake = lake_for(settings or Settings())
    return (
        Purger("events", ("events",), purge_events),
        Purger("handoff", ("handoff_tokens",), purge_tokens),
        Purger("offers", ("offers", "offer_impressions", "coupons"), purge_offers),
        Purger("lake", ("lake",), lake.purge),
        Purger("stream_tickets", ("stream_tickets",), purge_tickets),
        Purger("identity", ("shopper_aliases", "analytics_shopper_groups"), purge_identity),
    )


def backfill(engine: Engine) -> dict[str, int]:
    """Derived tables left empty beside stored data (an upgrade from before they existed, a
    bulk load) are rebuilt from the events and links; a cheap check on every start."""
    done: dict[str, int] = {}
    with engine.begin() as conn:
        has_events = conn.execute(select(Event.id).limit(1)).first() is not None
        has_rollups = conn.execute(select(DailyProduct.day).limit(1)).first() is not None
        if has_events and not has_rollups:
            done.update(rebuild_rollups(conn))
        has_links = conn.execute(select(ShopperAlias.id).limit(1)).first() is not None
        has_groups = conn.execute(select(ShopperGroup.shopper_id).limit(1)).first() is not None
        if has_links and not has_groups:
            done["analytics_shopper_groups"] = rebuild_groups(conn)
    return done


def _redis(settings: Settings) -> Redis | None:
    if not settings.redis_url:
        return None
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    # Fail fast: a request must not hang on a dead Redis (limits and stream leases fall back
    # to the DB).
    return redis.Redis.from_url(
        settings.redis_url,
        socket_timeout=1.0,
        socket_connect_timeout=1.0,
        retry=Retry(NoBackoff(), 1),
    )


def build_runtime(
    settings: Settings,
    engine: Engine,
    *,
    event_sink: EventSink | None = None,
    offer_items: Mapping[str, Item] | None = None,
) -> Runtime:
    """Everything the app owns, once (blocking: call from a thread at start-up).

    event_sink / offer_items replace the database sink and the catalog's offer items
    (benchmarks and tests that are about something else).
    """
    sessions = make_sessionmaker(engine)
    with sessions.begin() as session:
        bootstrap_keys(session, settings.demo_api_key or None, settings.bootstrap_admin_key or None)
    redis_client = _redis(settings)
    limiter = RateLimiter(engine, redis_client, prefix=settings.redis_prefix)
    metrics = TryOnMetrics()
    rejected = metrics.events_rejected
    ingestor = Ingestor(
        ingest_hooks(),
        settings.event_max_future_skew_s,
        RejectionRecorder(
            count=lambda reason, source: rejected.labels(reason, source).inc(),
            keep=settings.rejections_keep,
        ),
    )
    catalog = CatalogService(settings.assets_dir, sessions, glb_limits(settings))
    renderers = ThreadLocalRenderers(render_options(settings))
    factory = PipelineFactory(settings, catalog, renderers)
    offer_catalog = OfferCatalog(catalog.list_products, catalog.shade_list)
    fixed_items = dict(offer_items) if offer_items is not None else None
    spool = (
        EventSpool(
            settings.event_spool_dir,
            settings.event_spool_max_bytes,
            on_drop=metrics.events_dropped.inc,
        )
        if settings.event_spool_dir
        else None
    )
    batcher = EventBatcher(
        event_sink or DatabaseEventSink(sessions, ingestor, source="stream"),
        batch_size=settings.event_batch_size,
        interval_s=settings.event_flush_interval_s,
        max_buffer=settings.max_event_buffer,
        on_drop=metrics.events_dropped.inc,
        spool=spool,
        on_replay=metrics.events_replayed.inc,
        retry_max_s=settings.event_replay_max_backoff_s,
    )
    metrics.events_spooled.set_function(lambda: batcher.spooled)
    return Runtime(
        settings=settings,
        engine=engine,
        sessions=sessions,
        redis=redis_client,
        limiter=limiter,
        auth=Authenticator(
            sessions,
            limiter,
            default_limit=settings.rate_limit_per_minute,
            demo_limit=settings.demo_rate_limit_per_minute,
            tokens=SessionTokens(
                shared_secret(engine, settings.session_secret), settings.session_ttl_s
            ),
            session_limit=settings.session_rate_limit_per_minute,
            client_limit=settings.client_rate_limit_per_minute,
            trusted_proxies=settings.trusted_proxies,
        ),
        metrics=metrics,
        ingest=ingestor,
        erasers=erasers(settings),
        purgers=purgers(settings),
        catalog=catalog,
        pool=WorkerPool(settings.worker_threads, settings.max_pending_renders),
        renderers=renderers,
        pipelines=factory,
        image_pipelines=ImagePipelines(factory),
        streams=StreamRegistry(settings.max_streams),
        stream_leases=StreamLeases(
            engine,
            redis_client,
            prefix=settings.redis_prefix,
            cap=settings.max_streams_per_principal,
            ttl_s=settings.stream_lease_ttl_s,
            heartbeat_s=settings.stream_lease_heartbeat_s,
        ),
        event_batcher=batcher,
        offers=OffersRuntime(
            policy=OfferPolicy(
                frequency_cap=settings.offer_frequency_cap,
                frequency_window_hours=settings.offer_frequency_window_hours,
                coupon_after_hours=settings.coupon_after_hours,
                coupon_valid_hours=settings.coupon_valid_hours,
            ),
            ingest=ingestor,
            stats=StatsCache(settings.offers_stats_ttl_s),
            items=(lambda: fixed_items) if fixed_items is not None else offer_catalog.items,
        ),
        analytics=build_analytics(settings, engine),
    )


def close_runtime(rt: Runtime) -> None:
    """Stop workers, flush the last events, close Redis (blocking)."""
    rt.pool.shutdown()
    rt.event_batcher.close()
    rt.analytics.close()
    if rt.redis is not None:
        rt.redis.close()
