use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

use super::people::PeopleTable;
use crate::{
    api::admin::{
        AdminOverview, CreateTenant, EmailRow, EmailView, FailingRow, JobsView, ReactivateTenant, RetryJob,
        RetryStripeEvent, SuspendTenant, TenantRow, jobs_overview, load_admin_overview, outbox, outbox_email,
    },
    components::{
        forms::{FormError, TextField, action_error},
        status::Loaded,
        ui,
    },
};

#[component]
pub fn AdminPage() -> impl IntoView {
    let create = ServerAction::<CreateTenant>::new();
    let suspend = ServerAction::<SuspendTenant>::new();
    let reactivate = ServerAction::<ReactivateTenant>::new();
    let data = Resource::new(
        move || (create.version().get(), suspend.version().get(), reactivate.version().get()),
        |_| load_admin_overview(),
    );
    view! {
        <Title text="Tenants & users"/>
        <Loaded data view=move |o| view! { <Overview o create suspend reactivate/> }/>
    }
}

#[component]
fn TenantStatus(
    t: TenantRow,
    suspend: ServerAction<SuspendTenant>,
    reactivate: ServerAction<ReactivateTenant>,
) -> impl IntoView {
    let field = format!("reason-{}", t.id);
    if t.suspended {
        view! {
            <span class=ui::BADGE_HIGH>"Suspended"</span>
            <span class=ui::MUTED>{t.suspended_reason.map(|r| format!(" {r}"))}</span>
            <ActionForm action=reactivate attr:class="mt-2">
                <input type="hidden" name="tenant_id" value=t.id/>
                <button type="submit" class=ui::BUTTON_QUIET>"Reactivate"</button>
            </ActionForm>
        }
        .into_any()
    } else {
        view! {
            <ActionForm action=suspend attr:class="flex flex-wrap items-end gap-2">
                <input type="hidden" name="tenant_id" value=t.id/>
                <label class="sr-only" for=field.clone()>"Reason"</label>
                <input id=field name="reason" placeholder="Reason for suspending" maxlength=500 class=ui::INPUT/>
                <button type="submit" class=ui::BUTTON_QUIET>"Suspend"</button>
            </ActionForm>
        }
        .into_any()
    }
}

#[component]
fn Overview(
    o: AdminOverview,
    create: ServerAction<CreateTenant>,
    suspend: ServerAction<SuspendTenant>,
    reactivate: ServerAction<ReactivateTenant>,
) -> impl IntoView {
    let error = action_error(create);
    let suspend_error = action_error(suspend);
    let reactivate_error = action_error(reactivate);
    view! {
        <div class="flex flex-col gap-6">
            <h1 class=ui::HEADING>"Tenants & users"</h1>
            <section class=ui::CARD>
                <h2 class="mb-4 text-lg font-semibold text-gray-900">"Tenants"</h2>
                <p class="mb-4 text-sm text-gray-500">
                    "A suspended tenant's people cannot sign in, its API keys are refused and its buyers cannot pay; nothing is deleted."
                </p>
                <FormError error=suspend_error/>
                <FormError error=reactivate_error/>
                <div class="overflow-x-auto">
                    <table class=ui::TABLE data-testid="tenants">
                        <thead>
                            <tr>
                                <th class=ui::TH>"Name"</th>
                                <th class=ui::TH>"People"</th>
                                <th class=ui::TH>"Since"</th>
                                <th class=ui::TH>"Status"</th>
                            </tr>
                        </thead>
                        <tbody>
                            {o.tenants
                                .into_iter()
                                .map(|t| {
                                    let (name, count, created) = (t.name.clone(), t.user_count, t.created.clone());
                                    let marker = name.clone();
                                    view! {
                                        <tr data-tenant=marker>
                                            <td class=ui::TD>
                                                {name}
                                                <a class="ml-2 text-xs font-medium text-blue-600 hover:underline" href=format!("/admin/tenants/{}/terms", t.id)>"Payment terms"</a>
                                            </td>
                                            <td class=ui::TD>{count}</td>
                                            <td class=ui::TD>{created}</td>
                                            <td class=ui::TD><TenantStatus t suspend reactivate/></td>
                                        </tr>
                                    }
                                })
                                .collect_view()}
                        </tbody>
                    </table>
                </div>
            </section>
            <section class=ui::CARD>
                <h2 class=ui::SUBHEADING>"Add a tenant"</h2>
                <p class="mb-4 text-sm text-gray-500">"The owner receives an invitation to choose a password."</p>
                <FormError error/>
                <ActionForm action=create attr:class="grid grid-cols-1 gap-4 md:grid-cols-4" attr:novalidate="">
                    <TextField id="tenant-name" name="name" label="Tenant name" error maxlength=120/>
                    <TextField id="owner-name" name="owner_name" label="Owner's name" error maxlength=120/>
                    <TextField id="owner-email" name="owner_email" label="Owner's email" error input_type="email" maxlength=254/>
                    <div class="flex items-end">
                        <button type="submit" class=ui::BUTTON>"Create tenant"</button>
                    </div>
                </ActionForm>
            </section>
            <section class=ui::CARD>
                <h2 class="mb-4 text-lg font-semibold text-gray-900">"Everyone"</h2>
                <PeopleTable people=o.people show_tenant=true/>
            </section>
        </div>
    }
}

#[component]
pub fn OutboxPage() -> impl IntoView {
    let query = use_query_map();
    let to = move || query.read().get("to");
    let data = Resource::new(to, outbox);
    view! {
        <Title text="Outbox"/>
        <Loaded data view=move |emails| view! { <OutboxList emails to=to().unwrap_or_default()/> }/>
    }
}

#[component]
fn OutboxList(emails: Vec<EmailRow>, to: String) -> impl IntoView {
    view! {
        <div class="flex flex-col gap-6">
            <section>
                <h1 class=ui::HEADING>"Outbox"</h1>
                <p class=ui::MUTED>
                    "Every email Remit has sent or is sending, newest first. Without SMTP_URL, email is delivered here only; \
                     one-time links are shown only in development, and otherwise removed once an email is sent."
                </p>
                <form method="get" class="mt-4 flex flex-wrap items-end gap-2">
                    <div>
                        <label for="outbox-to" class=ui::LABEL>"To"</label>
                        <input id="outbox-to" name="to" type="email" value=to class=ui::INPUT/>
                    </div>
                    <button type="submit" class=ui::BUTTON_QUIET>"Show"</button>
                </form>
            </section>
            <section class=ui::CARD>
                {if emails.is_empty() {
                    view! { <p class=ui::MUTED>"No email yet."</p> }.into_any()
                } else {
                    view! {
                        <div class="overflow-x-auto">
                            <table class=ui::TABLE data-testid="outbox">
                                <thead>
                                    <tr>
                                        <th class=ui::TH>"To"</th>
                                        <th class=ui::TH>"Subject"</th>
                                        <th class=ui::TH>"Status"</th>
                                        <th class=ui::TH>"Queued"</th>
                                    </tr>
                                </thead>
                                <tbody>
                                    {emails.into_iter().map(|e| view! {
                                        <tr>
                                            <td class=ui::TD>{e.to}</td>
                                            <td class=ui::TD>
                                                <a class=ui::LINK href=format!("/admin/outbox/{}", e.id)>{e.subject}</a>
                                                {(e.attachment_count > 0).then(|| format!(" ({} attachment{})", e.attachment_count, if e.attachment_count == 1 { "" } else { "s" }))}
                                            </td>
                                            <td class=ui::TD><EmailStatus status=e.status transport=e.transport/></td>
                                            <td class=ui::TD>{e.created}</td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                        </div>
                    }.into_any()
                }}
            </section>
        </div>
    }
}

#[component]
fn EmailStatus(status: String, transport: Option<String>) -> impl IntoView {
    match (status.as_str(), transport.as_deref()) {
        ("sent", Some("smtp")) => view! { <span class=ui::BADGE_OK>"Sent by SMTP"</span> }.into_any(),
        ("sent", _) => view! { <span class=ui::BADGE_OK>"In outbox"</span> }.into_any(),
        ("failed", _) => view! { <span class=ui::BADGE_WAIT>"Failed"</span> }.into_any(),
        _ => view! { <span class=ui::BADGE>"Queued"</span> }.into_any(),
    }
}

#[component]
pub fn OutboxEmailPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let data = Resource::new(id, outbox_email);
    view! {
        <Title text="Email"/>
        <Loaded data view=|email| view! { <Email email/> }/>
    }
}

#[component]
fn Email(email: EmailView) -> impl IntoView {
    let id = email.row.id.clone();
    view! {
        <div class="flex flex-col gap-6">
            <p><a href="/admin/outbox" class=ui::LINK>"← Outbox"</a></p>
            <section class=ui::CARD>
                <h1 class=ui::HEADING>{email.row.subject}</h1>
                <p class="mt-1 text-sm text-gray-500">
                    "To " {email.row.to} " · " {email.row.created} " · "
                    <EmailStatus status=email.row.status transport=email.row.transport/>
                </p>
                <pre class="mt-4 whitespace-pre-wrap rounded-md bg-gray-100 p-4 text-sm" data-testid="email-body">{email.body}</pre>
                {(!email.attachments.is_empty()).then(|| view! {
                    <h2 class="mt-6 mb-2 text-lg font-semibold text-gray-900">"Attachments"</h2>
                    <ul class="flex flex-col gap-1 text-sm">
                        {email.attachments.into_iter().map(|a| view! {
                            <li>
                                <a class=ui::LINK href=format!("/admin/outbox/{id}/attachments/{}", a.id)>{a.filename}</a>
                                <span class=ui::MUTED>{format!(" {} · {} bytes", a.content_type, a.size)}</span>
                            </li>
                        }).collect_view()}
                    </ul>
                })}
            </section>
        </div>
    }
}

#[component]
pub fn JobsPage() -> impl IntoView {
    let retry = ServerAction::<RetryJob>::new();
    let retry_event = ServerAction::<RetryStripeEvent>::new();
    let data = Resource::new(move || (retry.version().get(), retry_event.version().get()), |_| jobs_overview());
    view! {
        <Title text="Background jobs"/>
        <Loaded data view=move |jobs| view! { <Jobs jobs retry retry_event/> }/>
    }
}

#[component]
fn Jobs(jobs: JobsView, retry: ServerAction<RetryJob>, retry_event: ServerAction<RetryStripeEvent>) -> impl IntoView {
    let error = action_error(retry);
    let event_error = action_error(retry_event);
    view! {
        <div class="flex flex-col gap-6">
            <section>
                <h1 class=ui::HEADING>"Background jobs"</h1>
                <p class=ui::MUTED>
                    "Emails, receipts, webhooks and scheduled checks run as jobs; Stripe's events are applied from the table they are stored in. Either is retried with backoff when it fails; after 3 failures platform admins are alerted."
                </p>
            </section>
            <section class=ui::CARD>
                <h2 class="mb-4 text-lg font-semibold text-gray-900">"Stripe events that could not be applied"</h2>
                <p class=ui::MUTED data-testid="events-waiting">{format!("{} events waiting to be applied.", jobs.events_waiting)}</p>
                <FormError error=event_error/>
                <FailingTable rows=jobs.failing_events testid="failing-events" none="Every event received has been applied."
                    retry=move |id| view! { <ActionForm action=retry_event><RetryNow id/></ActionForm> }.into_any()/>
            </section>
            <section class=ui::CARD>
                <h2 class="mb-4 text-lg font-semibold text-gray-900">"Waiting"</h2>
                {if jobs.queue.is_empty() {
                    view! { <p class=ui::MUTED>"No jobs are waiting."</p> }.into_any()
                } else {
                    view! {
                        <ul class="flex flex-col gap-1 text-sm" data-testid="job-queue">
                            {jobs.queue.into_iter().map(|(task, count)| view! { <li>{task} ": " {count}</li> }).collect_view()}
                        </ul>
                    }.into_any()
                }}
            </section>
            <section class=ui::CARD>
                <h2 class="mb-4 text-lg font-semibold text-gray-900">"Failing"</h2>
                <FormError error/>
                <FailingTable rows=jobs.failing testid="failing-jobs" none="No job is failing."
                    retry=move |id| view! { <ActionForm action=retry><RetryNow id/></ActionForm> }.into_any()/>
            </section>
        </div>
    }
}

/// The fields of a "Retry now" form.
#[component]
fn RetryNow(id: String) -> impl IntoView {
    view! {
        <input type="hidden" name="id" value=id/>
        <button type="submit" class=ui::BUTTON_QUIET>"Retry now"</button>
    }
}

/// Failing jobs or events: what, attempts, last error, next try, and "Retry now" (`retry`
/// renders its form for a row's id).
#[component]
fn FailingTable(
    rows: Vec<FailingRow>,
    testid: &'static str,
    none: &'static str,
    retry: impl Fn(String) -> AnyView + 'static,
) -> impl IntoView {
    if rows.is_empty() {
        return view! { <p class=ui::MUTED>{none}</p> }.into_any();
    }
    view! {
        <div class="overflow-x-auto">
            <table class=ui::TABLE data-testid=testid>
                <thead>
                    <tr>
                        <th class=ui::TH>"What"</th>
                        <th class=ui::TH>"Attempts"</th>
                        <th class=ui::TH>"Last error"</th>
                        <th class=ui::TH>"Next try"</th>
                        <th class=ui::TH>""</th>
                    </tr>
                </thead>
                <tbody>
                    {rows.into_iter().map(|row| view! {
                        <tr>
                            <td class=ui::TD>
                                {row.title}
                                {row.details.into_iter().map(|line| view! { <br/><span class=ui::MUTED>{line}</span> }).collect_view()}
                            </td>
                            <td class=ui::TD>{row.attempts}</td>
                            <td class=ui::TD>{row.last_error}</td>
                            <td class=ui::TD>{row.next}</td>
                            <td class=ui::TD>{retry(row.id)}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
    .into_any()
}
