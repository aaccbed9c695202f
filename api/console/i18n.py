"""Every string the console shows, in Vietnamese (first) and English, and the language of a request.

Vietnamese text is in NFC with its diacritics (`tests/console/test_i18n.py` checks it). A message is looked up
by key; `{name}` placeholders are filled by `str.format` with values the page passes in (the page's template
escapes the result, so a value from a case can never become markup). A key missing from the catalogue is a bug:
it is shown as the key itself and logged, never as an error page.
"""

from __future__ import annotations

import logging
from typing import Literal

from starlette.requests import Request

log = logging.getLogger("danvan.console")

Lang = Literal["vi", "en"]
LANGS: tuple[Lang, ...] = ("vi", "en")
DEFAULT_LANG: Lang = "vi"
#: The cookie that keeps the chosen language; `?lang=en` or `?lang=vi` on any page sets it.
LANG_COOKIE = "lang"

#: key -> (Vietnamese, English)
MESSAGES: dict[str, tuple[str, str]] = {
    # -- frame -----------------------------------------------------------------------------------------------
    "app.name": ("Ban Dân vận Tỉnh ủy — Theo dõi hồ sơ", "Mass Mobilization Commission — Case console"),
    "nav.label": ("Điều hướng chính", "Main navigation"),
    "nav.skip": ("Bỏ qua phần điều hướng", "Skip to the content"),
    "nav.cases": ("Hồ sơ", "Cases"),
    "nav.plan": ("Tiến độ kế hoạch", "Plan progress"),
    "nav.reports": ("Báo cáo định kỳ", "Period reports"),
    "nav.stalled": ("Hồ sơ bị ách tắc", "Stalled cases"),
    "nav.signout": ("Đăng xuất", "Sign out"),
    "nav.signed_in_as": ("Đăng nhập: {label} — {role}", "Signed in: {label} — {role}"),
    "nav.body": ("cơ quan {body}", "body {body}"),
    "lang.other": ("English", "Tiếng Việt"),
    "lang.other_label": ("Switch to English", "Chuyển sang tiếng Việt"),
    "footer.text": (
        "Mỗi bước xử lý là một sự kiện được lưu và liên kết bằng chuỗi băm SHA-256.",
        "Every step is a stored event, linked in a SHA-256 hash chain.",
    ),
    "common.yes": ("Có", "Yes"),
    "common.no": ("Không", "No"),
    "common.none": ("—", "—"),
    "common.any": ("Tất cả", "Any"),
    "common.overdue": ("Quá hạn", "Overdue"),
    # -- sign in ---------------------------------------------------------------------------------------------
    "login.title": ("Đăng nhập", "Sign in"),
    "login.token": ("Mã truy cập (bearer token)", "Access token (bearer token)"),
    "login.help": (
        "Dán mã truy cập được cấp cho bạn (bằng lệnh “danvan token create”, hoặc mã do “make up” in ra). Mã được "
        "giữ trong một cookie HttpOnly của trình duyệt này cho đến khi bạn đăng xuất.",
        "Paste the token issued to you (by “danvan token create”, or one printed by “make up”). It is kept in an "
        "HttpOnly cookie of this browser until you sign out.",
    ),
    "login.submit": ("Đăng nhập", "Sign in"),
    "login.empty": ("Hãy nhập mã truy cập.", "Enter a token."),
    "login.invalid": ("Mã truy cập không đúng hoặc đã bị thu hồi.", "Unknown or revoked token."),
    "login.expired_form": (
        "Biểu mẫu đăng nhập đã hết hạn; hãy thử lại.",
        "The sign-in form had expired; try again.",
    ),
    "login.signed_out": ("Bạn đã đăng xuất.", "You have signed out."),
    "login.session_ended": (
        "Phiên đăng nhập không còn hiệu lực; hãy đăng nhập lại.",
        "Your session is no longer valid; sign in again.",
    ),
    "login.needed": ("Hãy đăng nhập để tiếp tục.", "Sign in to continue."),
    # -- errors ----------------------------------------------------------------------------------------------
    "error.title.400": ("Yêu cầu không hợp lệ", "Bad request"),
    "error.title.403": ("Không có quyền truy cập", "Access denied"),
    "error.title.404": ("Không tìm thấy", "Not found"),
    "error.title.405": ("Phương thức không được hỗ trợ", "Method not allowed"),
    "error.title.409": ("Xung đột dữ liệu", "Conflict"),
    "error.title.413": ("Dữ liệu gửi lên quá lớn", "Request too large"),
    "error.title.415": ("Định dạng biểu mẫu không được hỗ trợ", "Unsupported form encoding"),
    "error.title.422": ("Dữ liệu không hợp lệ", "Invalid input"),
    "error.title.500": ("Lỗi hệ thống", "Internal error"),
    "error.title.503": ("Hệ thống tạm thời không sẵn sàng", "Temporarily unavailable"),
    "error.role": (
        "Vai trò “{role}” không được mở trang này. Các vai trò được phép: {roles}.",
        "The role “{role}” may not open this page. Allowed roles: {roles}.",
    ),
    "error.forbidden": (
        "Mã truy cập của bạn không được xem nội dung này.",
        "Your token may not see this.",
    ),
    "error.csrf": (
        "Biểu mẫu đã hết hạn hoặc không hợp lệ. Hãy tải lại trang và thử lại.",
        "The form has expired or is not valid. Reload the page and try again.",
    ),
    "error.not_found": ("Không có trang hoặc hồ sơ này.", "There is no such page or case."),
    "error.no_case": ("Không có hồ sơ “{case_id}”.", "There is no case “{case_id}”."),
    "error.internal": (
        "Đã xảy ra lỗi; lỗi đã được ghi vào nhật ký hệ thống.",
        "Something went wrong; it has been logged.",
    ),
    "error.store_down": (
        "Không kết nối được cơ sở dữ liệu; hãy thử lại sau ít phút.",
        "The database cannot be reached; try again shortly.",
    ),
    "error.temporal_down": (
        "Không kết nối được Temporal; hãy thử lại sau ít phút.",
        "Temporal cannot be reached; try again shortly.",
    ),
    "error.form_type": (
        "Biểu mẫu phải được gửi dưới dạng application/x-www-form-urlencoded.",
        "The form must be sent as application/x-www-form-urlencoded.",
    ),
    "error.too_large": ("Biểu mẫu quá lớn.", "The form is too large."),
    "error.fields": ("Các trường không hợp lệ:", "Invalid fields:"),
    "error.detail": ("Chi tiết kỹ thuật: {detail}", "Technical detail: {detail}"),
    "error.back": ("Về danh sách hồ sơ", "Back to the case list"),
    "error.signin": ("Đăng nhập bằng mã khác", "Sign in with another token"),
    # -- case list -------------------------------------------------------------------------------------------
    "cases.title": ("Danh sách hồ sơ", "Cases"),
    "cases.filters": ("Lọc hồ sơ", "Filter cases"),
    "cases.kind": ("Loại hồ sơ", "Kind"),
    "cases.status": ("Trạng thái", "Status"),
    "cases.body": ("Cơ quan (chủ trì hoặc phối hợp)", "Body (lead or coordinating)"),
    "cases.body_fixed": ("Chỉ các hồ sơ của cơ quan {body}.", "Only the cases of body {body}."),
    "cases.district": ("Địa bàn (huyện, thị xã, thành phố)", "District"),
    "cases.overdue": ("Quá hạn", "Overdue"),
    "cases.stalled": ("Ách tắc", "Stalled"),
    "cases.stalled_help": ("Hỏi Temporal nên chậm hơn.", "Asks Temporal, so it is slower."),
    "cases.received_from": ("Nhận từ ngày", "Received from"),
    "cases.received_to": ("Đến ngày", "Received until"),
    "cases.apply": ("Lọc", "Filter"),
    "cases.reset": ("Bỏ lọc", "Clear filters"),
    "cases.list": ("Hồ sơ, mới nhất trước", "Cases, newest first"),
    "cases.col.case": ("Mã hồ sơ", "Case"),
    "cases.col.title": ("Nội dung", "Subject"),
    "cases.col.kind": ("Loại", "Kind"),
    "cases.col.status": ("Trạng thái", "Status"),
    "cases.col.lead": ("Cơ quan chủ trì", "Lead body"),
    "cases.col.district": ("Địa bàn", "District"),
    "cases.col.received": ("Ngày nhận", "Received"),
    "cases.col.due": ("Hạn tiếp theo", "Next due"),
    "cases.empty": ("Không có hồ sơ nào khớp với bộ lọc.", "No case matches the filters."),
    "cases.next": ("Trang sau", "Next page"),
    "cases.first": ("Về trang đầu", "First page"),
    "cases.paging": ("Phân trang", "Pages"),
    "counts.title": ("Tổng hợp theo bộ lọc", "Counts for these filters"),
    "counts.total": ("Tổng số hồ sơ", "Cases in all"),
    "counts.overdue": ("Trong đó quá hạn", "Of which overdue"),
    "counts.by_status": ("Theo trạng thái", "By status"),
    "counts.by_kind": ("Theo loại", "By kind"),
    "counts.by_lead_body": ("Theo cơ quan chủ trì", "By lead body"),
    "counts.by_district": ("Theo địa bàn", "By district"),
    "counts.value": ("Nhóm", "Group"),
    "counts.count": ("Số hồ sơ", "Cases"),
    "counts.of_which_overdue": ("Quá hạn", "Overdue"),
    "counts.unset": ("(chưa xác định)", "(not set)"),
    # -- case page -------------------------------------------------------------------------------------------
    "case.title": ("Hồ sơ {case_id}", "Case {case_id}"),
    "case.state": ("Tình trạng hồ sơ", "State"),
    "case.subject": ("Nội dung", "Subject"),
    "case.kind": ("Loại hồ sơ", "Kind"),
    "case.status": ("Trạng thái", "Status"),
    "case.lead": ("Cơ quan chủ trì", "Lead body"),
    "case.bodies": ("Các cơ quan liên quan", "Bodies involved"),
    "case.district": ("Địa bàn", "District"),
    "case.commune": ("Xã, phường", "Commune"),
    "case.received": ("Ngày nhận", "Received"),
    "case.source": ("Hệ thống gửi / số hiệu", "Sending system / its reference"),
    "case.version": ("Số sự kiện", "Events"),
    "case.updated": ("Cập nhật lần cuối", "Last updated"),
    "case.next_due": ("Hạn tiếp theo", "Next due"),
    "case.overdue_flag": ("Hồ sơ đang quá hạn", "The case is overdue"),
    "case.temporal": (
        "Mở quy trình của hồ sơ trong Temporal Web UI",
        "Open the case's workflow in the Temporal Web UI",
    ),
    "case.no_row": (
        "Hồ sơ chưa có bản ghi tình trạng; chỉ hiển thị các sự kiện.",
        "The case has no state row yet; only its events are shown.",
    ),
    "case.audited": (
        "Lượt xem hồ sơ tố cáo này đã được ghi vào nhật ký truy cập.",
        "This view of a denunciation has been recorded in the read audit.",
    ),
    "deadlines.title": ("Thời hạn", "Deadlines"),
    "deadlines.col.what": ("Thời hạn", "Deadline"),
    "deadlines.col.due": ("Hạn", "Due"),
    "deadlines.col.basis": ("Căn cứ", "Legal basis"),
    "deadlines.col.state": ("Tình trạng", "State"),
    "deadlines.none": ("Hồ sơ chưa có thời hạn nào.", "The case has no deadline."),
    "deadlines.not_statutory": ("không phải thời hạn luật định", "not a statutory period"),
    "deadlines.extended": ("đã gia hạn {n} lần", "extended {n} times"),
    "deadlines.met_at": ("hoàn thành lúc {at}", "met at {at}"),
    "deadline.state.pending": ("Đang tính", "Running"),
    "deadline.state.on_time": ("Đúng hạn", "Met on time"),
    "deadline.state.late": ("Trễ hạn", "Met late"),
    "deadline.state.cancelled": ("Đã hủy", "Cancelled"),
    "deadline.breached": ("Quá hạn", "Breached"),
    "deadline.approaching": ("Sắp đến hạn", "Approaching"),
    "deadline.key.coordination": ("Phần phối hợp của {body} (yêu cầu {request})", "{body}'s part (request {request})"),
    "deadline.key.ack": ("{body} xác nhận nhận nhiệm vụ", "{body} acknowledges the task"),
    "deadline.key.subplan": ("{body} nộp kế hoạch triển khai", "{body} submits its sub-plan"),
    "deadline.key.report": ("Báo cáo kỳ {period}", "Report for {period}"),
    "deadline.key.report_urge": ("Báo cáo kỳ {period} sau khi đôn đốc", "Report for {period} after being urged"),
    "board.title": ("Bảng phối hợp", "Coordination board"),
    "board.help": (
        "Cơ quan nào phải làm gì, hạn đến bao giờ, đã trả lời hay chưa.",
        "Which body owes what, by when, and whether it has answered.",
    ),
    "board.col.body": ("Cơ quan", "Body"),
    "board.col.owes": ("Phải làm", "Owes"),
    "board.col.due": ("Hạn", "Due"),
    "board.col.answered": ("Đã trả lời", "Answered"),
    "board.none": ("Chưa có việc nào giao cho cơ quan khác.", "Nothing is owed by another body yet."),
    "board.owes.coordination": ("Phối hợp: {subject}", "Contribution: {subject}"),
    "board.owes.ack": ("Xác nhận nhận nhiệm vụ", "Acknowledge the task"),
    "board.owes.subplan": ("Kế hoạch triển khai", "Its sub-plan"),
    "board.owes.report": ("Báo cáo kỳ {period}", "Report for {period}"),
    "board.answered": ("Đã trả lời", "Answered"),
    "board.answered_late": ("Đã trả lời, trễ hạn", "Answered late"),
    "board.waiting": ("Chưa trả lời", "Not yet"),
    "board.cancelled": ("Không còn yêu cầu", "No longer asked"),
    "timeline.title": ("Diễn biến hồ sơ", "Timeline"),
    "timeline.with_process": ("Hiện cả các bước của quy trình (Temporal)", "Show the process steps too (Temporal)"),
    "timeline.without_process": ("Chỉ hiện các sự kiện nghiệp vụ", "Show only the domain events"),
    "timeline.col.version": ("Số", "No."),
    "timeline.col.when": ("Thời điểm", "When"),
    "timeline.col.event": ("Sự kiện", "Event"),
    "timeline.col.actor": ("Người thực hiện", "Actor"),
    "timeline.col.reason": ("Lý do", "Reason"),
    "timeline.col.basis": ("Căn cứ", "Legal basis"),
    "timeline.data": ("Dữ liệu của sự kiện", "The event's data"),
    "timeline.process": ("Quy trình", "Process"),
    "timeline.process_down": (
        "Không đọc được diễn biến quy trình từ Temporal lúc này; các sự kiện nghiệp vụ vẫn đầy đủ.",
        "Temporal's process history cannot be read now; the domain events are complete.",
    ),
    "timeline.empty": ("Hồ sơ chưa có sự kiện nào.", "The case has no event."),
    "integrity.title": ("Tính toàn vẹn", "Integrity"),
    "integrity.ok": (
        "Toàn vẹn: chuỗi băm của {n} sự kiện khớp",
        "Verified: the hash chain of {n} events matches",
    ),
    "integrity.bad": (
        "KHÔNG toàn vẹn từ sự kiện số {version}: {problem}",
        "NOT verified from event {version}: {problem}",
    ),
    "identity.title": ("Người tố cáo", "The denouncer"),
    "identity.title_petitioner": ("Người gửi đơn", "The petitioner"),
    "identity.sealed_petitioner": (
        "Danh tính người gửi đơn được niêm phong và chỉ được mở khi cần để giải quyết; mỗi lần xem đều được ghi lại.",
        "The petitioner's identity is sealed and opened only when needed to resolve the case; every read is recorded.",
    ),
    "identity.not_cleared_petitioner": (
        "Bạn không được xem danh tính người gửi đơn: chỉ cơ quan chủ trì giải quyết và giám sát viên được xem.",
        "You may not read the petitioner's identity: only the lead body resolving the case and supervisors may.",
    ),
    "identity.erased": (
        "Danh tính người gửi đơn của hồ sơ này đã bị xóa vĩnh viễn.",
        "The petitioner's identity of this case has been erased for good.",
    ),
    "identity.sealed": (
        "Danh tính người tố cáo được giữ bí mật (Luật Tố cáo 2018) và chỉ được mở khi cần để giải quyết.",
        "The denouncer's identity is kept secret (Luật Tố cáo 2018) and opened only when needed to resolve the case.",
    ),
    "identity.not_cleared": (
        "Bạn không được xem danh tính người tố cáo: chỉ cơ quan chủ trì giải quyết và giám sát viên được xem.",
        "You may not read the denouncer's identity: only the lead body resolving the case and supervisors may.",
    ),
    "identity.purpose": ("Mục đích xem danh tính (bắt buộc, được ghi lại)", "Why you need it (required, recorded)"),
    "identity.purpose_rule": ("Mục đích phải dài từ 5 đến 500 ký tự.", "The purpose must be 5 to 500 characters."),
    "identity.reveal": ("Xem danh tính", "Reveal the identity"),
    "identity.recorded": (
        "Lần xem danh tính này đã được ghi lại cùng mục đích.",
        "This read of the identity has been recorded with its purpose.",
    ),
    "identity.none": ("Không có danh tính được niêm phong cho hồ sơ này.", "No sealed identity is kept for this case."),
    "identity.name": ("Họ và tên", "Name"),
    "identity.address": ("Địa chỉ", "Address"),
    "identity.phone": ("Điện thoại", "Phone"),
    "identity.email": ("Thư điện tử", "Email"),
    "identity.id_number": ("Số giấy tờ tùy thân", "ID number"),
    # -- plan progress ---------------------------------------------------------------------------------------
    "plan.title": ("Tiến độ thực hiện kế hoạch", "Plan progress"),
    "plan.none": ("Chưa có nhiệm vụ kế hoạch nào.", "No plan task yet."),
    "plan.heading": ("Kế hoạch {plan_id}", "Plan {plan_id}"),
    "plan.term": ("Thời gian thực hiện: {start} – {end}", "Term: {start} – {end}"),
    "plan.tasks_count": ("{shown} nhiệm vụ (kế hoạch có {tasks})", "{shown} tasks (the plan has {tasks})"),
    "plan.cycles": ("Kỳ báo cáo đã mở: {cycles}", "Report cycles started: {cycles}"),
    "plan.by_task": ("Theo nhiệm vụ", "By task"),
    "plan.by_body": ("Theo cơ quan", "By body"),
    "plan.col.task": ("Nhiệm vụ", "Task"),
    "plan.col.lead": ("Chủ trì", "Lead"),
    "plan.col.coordinators": ("Phối hợp", "Coordinating"),
    "plan.col.phase": ("Giai đoạn", "Phase"),
    "plan.col.acknowledged": ("Đã xác nhận", "Acknowledged"),
    "plan.col.progress": ("Lần cập nhật tiến độ", "Progress updates"),
    "plan.col.reports": ("Báo cáo", "Reports"),
    "plan.col.due": ("Hạn tiếp theo", "Next due"),
    "plan.col.body": ("Cơ quan", "Body"),
    "plan.col.led": ("Chủ trì", "Leads"),
    "plan.col.coordinating": ("Phối hợp", "Coordinates"),
    "plan.col.ack_missing": ("Chưa xác nhận", "Not acknowledged"),
    "plan.col.reports_in": ("Báo cáo đã nộp", "Reports in"),
    "plan.col.reports_open": ("Báo cáo chưa nộp", "Reports open"),
    "plan.col.overdue": ("Nhiệm vụ quá hạn", "Overdue tasks"),
    "plan.report.submitted": ("{period}: đã nộp", "{period}: submitted"),
    "plan.report.submitted_late": ("{period}: nộp trễ", "{period}: submitted late"),
    "plan.report.open": ("{period}: chưa nộp", "{period}: not submitted"),
    "plan.truncated": (
        "Chỉ hiển thị {n} nhiệm vụ đầu tiên.",
        "Only the first {n} tasks are shown.",
    ),
    # -- period reports --------------------------------------------------------------------------------------
    "reports.title": ("Báo cáo định kỳ", "Period reports"),
    "reports.form": ("Chọn kỳ báo cáo", "Choose a period"),
    "reports.period": ("Kỳ báo cáo", "Period"),
    "reports.plan": ("Mã kế hoạch (không bắt buộc)", "Plan id (optional)"),
    "reports.as_of": ("Tính đến (không bắt buộc, giờ Việt Nam)", "As of (optional, Vietnam time)"),
    "reports.show": ("Xem báo cáo", "Show the report"),
    "reports.csv": ("Tải về các bảng dạng CSV (nén ZIP)", "Download the tables as CSV (ZIP)"),
    "reports.xlsx": ("Tải về tệp Excel (mỗi bảng một trang)", "Download as Excel (a sheet per table)"),
    "reports.heading": ("{title} — kỳ {period}", "{title} — period {period}"),
    "reports.range": ("Từ {start} đến {end}; hạn nộp {due}", "From {start} to {end}; due {due}"),
    "reports.compiled": ("Báo cáo đã được tổng hợp chính thức, số liệu tính đến {as_of}.",
                         "The compiled report, with the figures as of {as_of}."),
    "reports.live": ("Số liệu tính đến {as_of} (chưa tổng hợp chính thức).",
                     "Figures as of {as_of} (not compiled yet)."),
    "reports.body_scope": ("Chỉ gồm các nhiệm vụ do cơ quan {body} chủ trì.", "Only the tasks led by body {body}."),
    "reports.petitions": ("Đơn thư theo loại và địa bàn", "Petitions by kind and district"),
    "reports.totals": ("Tổng hợp đơn thư theo loại", "Petition totals by kind"),
    "reports.tasks": ("Báo cáo của các nhiệm vụ", "Plan tasks' reports"),
    "reports.bodies": ("Theo cơ quan chủ trì", "By lead body"),
    "reports.none": ("Không có số liệu.", "No figures."),
    "reports.all": ("Tất cả", "All"),
    "reports.col.kind": ("Loại", "Kind"),
    "reports.col.district": ("Địa bàn", "District"),
    "reports.col.received": ("Tiếp nhận", "Received"),
    "reports.col.accepted": ("Thụ lý", "Accepted"),
    "reports.col.resolved": ("Đã giải quyết", "Resolved"),
    "reports.col.on_time": ("Đúng hạn", "On time"),
    "reports.col.late": ("Trễ hạn", "Late"),
    "reports.col.task": ("Nhiệm vụ", "Task"),
    "reports.col.lead": ("Chủ trì", "Lead"),
    "reports.col.report": ("Tình trạng báo cáo", "Report"),
    "reports.col.due_on": ("Hạn nộp", "Due"),
    "reports.col.submitted_at": ("Ngày nộp", "Submitted"),
    "reports.col.urged": ("Số lần đôn đốc", "Urged"),
    "reports.col.escalated": ("Đã báo cáo cấp trên", "Escalated"),
    "reports.col.body": ("Cơ quan", "Body"),
    "reports.col.tasks": ("Số nhiệm vụ", "Tasks"),
    "reports.col.submitted_on_time": ("Nộp đúng hạn", "On time"),
    "reports.col.submitted_late": ("Nộp trễ", "Late"),
    "reports.col.missing": ("Chưa nộp", "Missing"),
    "reports.bad_as_of": (
        "Thời điểm không hợp lệ: hãy nhập theo dạng 2026-06-30T17:00.",
        "Not a valid instant: write it as 2026-06-30T17:00.",
    ),
    # -- stalled cases and their repairs (ops) ---------------------------------------------------------------
    "stalled.title": ("Hồ sơ bị ách tắc", "Stalled cases"),
    "stalled.intro": (
        "Các hồ sơ có quy trình xử lý đang bị kẹt, lâu nhất trước: một bước xử lý liên tục lỗi (từ lần thử thứ "
        "{min_attempts}), một bước bị tạm dừng, mã quy trình của hồ sơ liên tục lỗi, hoặc đã quá hạn mà "
        "{idle_hours} giờ không ai xử lý.",
        "Cases whose processing is stuck, the longest first: a step that keeps failing (from its attempt "
        "{min_attempts}), a paused step, the case's workflow code failing, or a passed deadline nobody has acted "
        "on for {idle_hours} hours.",
    ),
    "stalled.filters": ("Lọc hàng đợi", "Filter the queue"),
    "stalled.kind": ("Loại hồ sơ", "Kind"),
    "stalled.lead": ("Cơ quan chủ trì", "Lead body"),
    "stalled.reason": ("Lý do ách tắc", "Why it is stalled"),
    "stalled.apply": ("Lọc", "Filter"),
    "stalled.clear": ("Bỏ lọc", "Clear filters"),
    "stalled.list": ("Hàng đợi, ách tắc lâu nhất trước", "The queue, longest stalled first"),
    "stalled.count": ("{n} trường hợp ách tắc", "{n} stalled findings"),
    "stalled.none": ("Không có hồ sơ nào bị ách tắc khớp với bộ lọc.", "No stalled case matches the filters."),
    "stalled.col.case": ("Hồ sơ", "Case"),
    "stalled.col.reason": ("Lý do", "Reason"),
    "stalled.col.since": ("Từ lúc", "Since"),
    "stalled.col.detail": ("Chi tiết kỹ thuật", "Technical detail"),
    "stalled.col.attempts": ("Số lần thử", "Attempts"),
    "stalled.col.remedies": ("Cách xử lý phù hợp", "Remedies that fit"),
    "stalled.read_only": (
        "Giám sát viên chỉ xem hàng đợi; việc sửa hồ sơ do cán bộ vận hành thực hiện.",
        "Supervisors see the queue; operators repair the cases.",
    ),
    "stalled.repairs_for": ("Xử lý hồ sơ {case_id}", "Repair case {case_id}"),
    "stalled.reason_field": (
        "Lý do (bắt buộc, ít nhất {min} ký tự, được ghi vào hồ sơ)",
        "Reason (required, at least {min} characters, recorded in the case)",
    ),
    "stalled.body_target": ("Chuyển cho cơ quan (mã cơ quan, bắt buộc)", "To body (its code, required)"),
    "stalled.body_nudge": (
        "Nhắc cơ quan (mã cơ quan; để trống: mọi cơ quan còn nợ trả lời)",
        "Body to remind (its code; blank: every body that owes an answer)",
    ),
    "stalled.event_id": (
        "Quay về sự kiện số (không bắt buộc; để trống: điểm tốt cuối cùng)",
        "Back to event id (optional; blank: the last good point)",
    ),
    "stalled.do.retry": ("Thử lại ngay", "Retry now"),
    "stalled.do.reset": ("Xem trước việc chạy lại", "Preview the reset"),
    "stalled.do.nudge": ("Gửi lời nhắc", "Send the reminder"),
    "stalled.do.reassign": ("Chuyển hồ sơ", "Reassign"),
    "stalled.help.retry": (
        "Chạy lại ngay bước đang lỗi hoặc bị tạm dừng.",
        "Runs the failing or paused step again now.",
    ),
    "stalled.help.reset": (
        "Sau khi đã triển khai bản sửa lỗi: chạy lại quy trình từ điểm tốt cuối cùng. Trước hết xem điểm đó và "
        "các lệnh sẽ được chạy lại; chưa có gì thay đổi cho đến khi bạn xác nhận.",
        "After a fix is deployed: re-runs the workflow from its last good point. First see that point and the "
        "commands that would be re-run; nothing changes until you confirm.",
    ),
    "stalled.help.nudge": (
        "Gửi lời nhắc tới cơ quan còn nợ hồ sơ câu trả lời.",
        "Reminds the body that owes the case an answer.",
    ),
    "stalled.help.reassign": ("Giao hồ sơ cho cơ quan khác giải quyết.", "Gives the case to another body."),
    "stalled.bulk.title": ("Thử lại tất cả hồ sơ khớp bộ lọc", "Retry all matching cases"),
    "stalled.bulk.help": (
        "Thử lại mọi hồ sơ có bước xử lý đang lỗi hoặc bị tạm dừng, theo loại hồ sơ và cơ quan chủ trì đang lọc "
        "({filters}), tối đa {per_second} hồ sơ mỗi giây.",
        "Retries every case whose step is failing or paused, of the kind and lead body filtered ({filters}), at "
        "most {per_second} cases a second.",
    ),
    "stalled.bulk.no_filter": ("không lọc", "no filter"),
    "stalled.bulk.limit": ("Tối đa số hồ sơ", "At most this many cases"),
    "stalled.bulk.preview": ("Chỉ liệt kê, không thực hiện", "Only list them (dry run)"),
    "stalled.bulk.run": ("Thử lại tất cả", "Retry them all"),
    "stalled.bulk.not_here": (
        "Lý do đang lọc không phải một bước lỗi hay bị tạm dừng: không có gì để thử lại hàng loạt.",
        "The reason filtered is not a failing or paused step: there is nothing to retry in bulk.",
    ),
    "stalled.bulk.col.case": ("Hồ sơ", "Case"),
    "stalled.bulk.col.outcome": ("Kết quả", "Outcome"),
    "stalled.bulk.col.rule": ("Quy tắc", "Rule"),
    "stalled.bulk.col.detail": ("Chi tiết", "Detail"),
    "stalled.flash.recorded": (
        "Đã thực hiện “{action}” cho hồ sơ {case_id} và đã ghi vào hồ sơ: {events} (đến sự kiện số {version}).",
        "{action}: done for case {case_id} and recorded: {events} (up to event {version}).",
    ),
    "stalled.flash.accepted": (
        "Đã thực hiện “{action}” cho hồ sơ {case_id}. Việc ghi nhận đã được chấp nhận và sẽ được ghi vào hồ sơ "
        "khi bước đang chạy kết thúc.",
        "{action}: done for case {case_id}. Its record was accepted and will be written when the running step "
        "ends.",
    ),
    "stalled.flash.steps": ("Các bước được thử lại: {steps}.", "Steps retried: {steps}."),
    "stalled.flash.point": (
        "Chạy lại từ sự kiện số {event_id} của lịch sử quy trình.",
        "Re-run from event {event_id} of the workflow history.",
    ),
    "stalled.flash.body": ("Cơ quan: {body}.", "Body: {body}."),
    "stalled.flash.refused": (
        "Không thực hiện “{action}” cho hồ sơ {case_id}: thao tác bị từ chối. Không có gì thay đổi.",
        "{action}: refused for case {case_id}. Nothing was changed.",
    ),
    "stalled.flash.unrecorded": (
        "Hồ sơ {case_id} đã được “{action}”, nhưng việc ghi nhận vào hồ sơ bị từ chối: lần sửa này không có trong "
        "nhật ký của hồ sơ. Hãy kiểm tra hồ sơ.",
        "{action}: done for case {case_id}, but its record was refused: this repair is not in the case's record. "
        "Check the case.",
    ),
    "stalled.flash.rule": ("Quy tắc", "Rule"),
    "stalled.flash.message": ("Chi tiết: {message}", "Detail: {message}"),
    "stalled.flash.invalid": (
        "Chưa thực hiện “{action}” cho hồ sơ {case_id}: trường “{label}” ({field}) không hợp lệ. Không có gì "
        "thay đổi.",
        "{action}: not done for case {case_id}: the field “{label}” ({field}) is not valid. Nothing was changed.",
    ),
    "stalled.flash.failed": (
        "Temporal báo lỗi khi thực hiện “{action}” cho hồ sơ {case_id}; hãy xem lại hồ sơ trước khi thử lại.",
        "{action}: Temporal answered with an error for case {case_id}; check the case before trying again.",
    ),
    "stalled.flash.bulk": (
        "Thử lại hàng loạt: {matched} hồ sơ khớp; {retried} đã thử lại, {refused} bị từ chối, {failed} lỗi.",
        "Bulk retry: {matched} cases matched; {retried} retried, {refused} refused, {failed} failed.",
    ),
    "stalled.flash.bulk_dry": (
        "Xem trước thử lại hàng loạt: {matched} hồ sơ sẽ được thử lại. Chưa thực hiện gì.",
        "Bulk retry preview: {matched} cases would be retried. Nothing was done.",
    ),
    "stalled.flash.bulk_left_out": ("… và {n} hồ sơ khác không liệt kê ở đây.", "… and {n} more not listed here."),
    "stalled.bulk_action": ("Thử lại hàng loạt", "Bulk retry"),
    "stalled.field.reason": ("Lý do", "Reason"),
    "stalled.field.body": ("Cơ quan", "Body"),
    "stalled.field.to_event_id": ("Quay về sự kiện số", "Back to event id"),
    "stalled.field.limit": ("Tối đa số hồ sơ", "At most this many cases"),
    "stalled.problem.reason_short": (
        "Lý do phải có ít nhất {min} ký tự (không tính khoảng trắng ở đầu và cuối).",
        "A reason needs at least {min} characters (not counting spaces at either end).",
    ),
    "stalled.problem.reason_long": (
        "Lý do không được dài quá {max} ký tự.",
        "A reason may not be longer than {max} characters.",
    ),
    "stalled.problem.body_missing": ("Hãy nhập mã cơ quan nhận hồ sơ.", "Enter the code of the body the case goes to."),
    "stalled.problem.body_long": (
        "Mã cơ quan không được dài quá {max} ký tự.",
        "A body code may not be longer than {max} characters.",
    ),
    "stalled.problem.event_id": (
        "Số sự kiện phải là một số nguyên dương.",
        "The event id must be a positive whole number.",
    ),
    "stalled.problem.limit": ("Số hồ sơ tối đa phải từ 1 đến {max}.", "The number of cases must be from 1 to {max}."),
    "stalled.banner": (
        "Hồ sơ đang bị ách tắc: {reason} (từ {since}).",
        "This case is stalled: {reason} (since {since}).",
    ),
    "stalled.banner_link": ("Mở hàng đợi hồ sơ bị ách tắc", "Open the stalled-cases queue"),
    # -- a reset's preview -------------------------------------------------------------------------------------
    "reset.title": ("Xem trước việc chạy lại hồ sơ {case_id}", "Reset preview for case {case_id}"),
    "reset.nothing_done": (
        "Đây chỉ là bản xem trước: chưa có gì thay đổi.",
        "This is a preview only: nothing has changed.",
    ),
    "reset.point": ("Điểm quay về", "Reset point"),
    "reset.point_value": (
        "Sự kiện số {event_id} của lịch sử quy trình, lúc {at}",
        "Event {event_id} of the workflow history, at {at}",
    ),
    "reset.run": ("Lượt chạy hiện tại", "Current run"),
    "reset.events_after": (
        "Số sự kiện lịch sử sau điểm này (sẽ được thay thế)",
        "History events after that point (replaced)",
    ),
    "reset.stream_version": (
        "Số sự kiện nghiệp vụ đã lưu (không ghi lại lần nữa)",
        "Domain events stored (not appended again)",
    ),
    "reset.failing": ("Lỗi hiện tại của mã quy trình", "Why the workflow code is failing"),
    "reset.commands": ("Các lệnh sẽ được quyết định lại", "Commands that will be decided again"),
    "reset.commands_help": (
        "Sự kiện của các lệnh này đã có trong hồ sơ: lượt chạy mới nhận lại chúng và không ghi thêm lần nữa.",
        "Their events are in the case already: the new run adopts them and does not append them again.",
    ),
    "reset.col.update": ("Cập nhật (Update)", "Update"),
    "reset.col.command": ("Lệnh", "Command"),
    "reset.col.command_id": ("Mã lệnh", "Command id"),
    "reset.col.accepted": ("Được chấp nhận lúc", "Accepted at"),
    "reset.no_commands": ("Không có lệnh nào sau điểm này.", "No command after that point."),
    "reset.signals": ("Tín hiệu (signal) sẽ được nhận lại: {signals}", "Signals received again: {signals}"),
    "reset.confirm_title": ("Xác nhận chạy lại", "Confirm the reset"),
    "reset.confirm": ("Chạy lại hồ sơ từ điểm này", "Reset the case to this point"),
    "reset.cancel": ("Quay lại hàng đợi, không chạy lại", "Back to the queue, no reset"),
}

#: Names of codes the pages show: group -> code -> (Vietnamese, English). An unknown code is shown as is.
LABELS: dict[str, dict[str, tuple[str, str]]] = {
    "role": {
        "intake": ("hệ thống tiếp nhận", "intake system"),
        "body": ("cán bộ cơ quan", "body staff"),
        "supervisor": ("giám sát viên", "supervisor"),
        "operator": ("vận hành", "operator"),
        "admin": ("quản trị", "administrator"),
    },
    "kind": {
        "complaint": ("Khiếu nại", "Complaint"),
        "denunciation": ("Tố cáo", "Denunciation"),
        "recommendation": ("Kiến nghị, phản ánh", "Recommendation / feedback"),
        "voter_petition": ("Kiến nghị cử tri", "Voters' petition"),
        "plan_task": ("Nhiệm vụ kế hoạch", "Plan task"),
        "plan": ("Kế hoạch", "Action plan"),
        "report_cycle": ("Kỳ báo cáo", "Report cycle"),
        "front_supervision": ("Giám sát của Mặt trận", "Front supervision"),
    },
    "status": {
        # petitions
        "received": ("Đã tiếp nhận", "Received"),
        "classified": ("Đã phân loại", "Classified"),
        "split": ("Đã tách đơn", "Split"),
        "not_processed": ("Không xử lý", "Not processed"),
        "redirected": ("Đã hướng dẫn", "Redirected"),
        "forwarded": ("Đã chuyển đơn", "Forwarded"),
        "rejected": ("Không thụ lý", "Rejected"),
        "accepted": ("Đã thụ lý", "Accepted"),
        "verifying": ("Đang xác minh", "Verifying"),
        "dialogue": ("Đang đối thoại", "In dialogue"),
        "decided": ("Đã ra quyết định, kết luận", "Decided"),
        "notified": ("Đã thông báo", "Notified"),
        "implementing": ("Đang tổ chức thực hiện", "Implementing"),
        "terminated": ("Đã đình chỉ", "Terminated"),
        "closed": ("Đã kết thúc", "Closed"),
        "archived": ("Đã lưu hồ sơ", "Archived"),
        # plan tasks
        "assigned": ("Đã giao", "Assigned"),
        "active": ("Đang thực hiện", "Active"),
        "report_due": ("Đến kỳ báo cáo", "Report due"),
        "overdue_report": ("Báo cáo quá hạn", "Report overdue"),
        "urged": ("Đã bị đôn đốc", "Urged"),
        "report_submitted": ("Đã nộp báo cáo", "Report submitted"),
        "final_review": ("Đang tổng kết", "Final review"),
        # Front supervision
        "watching": ("Đang theo dõi", "Watching"),
        "reminded": ("Đã nhắc", "Reminded"),
        "recommendation_sent": ("Đã gửi kiến nghị", "Recommendation sent"),
        "response_received": ("Đã nhận trả lời", "Response received"),
        "satisfied": ("Đã chấp nhận trả lời", "Satisfied"),
        "disputed": ("Không đồng ý với trả lời", "Disputed"),
        "escalated": ("Đã báo cáo cấp trên", "Escalated"),
        # report cycles
        "opened": ("Đã mở", "Opened"),
        "requested": ("Đã yêu cầu báo cáo", "Reports requested"),
        "compiled": ("Đã tổng hợp", "Compiled"),
    },
    "side": {
        "party": ("Khối Đảng", "Party"),
        "state": ("Chính quyền", "State"),
        "front": ("Mặt trận", "Front"),
    },
    "report": {
        "submitted_on_time": ("Nộp đúng hạn", "Submitted on time"),
        "submitted_late": ("Nộp trễ", "Submitted late"),
        "missing": ("Chưa nộp", "Missing"),
        "not_requested": ("Chưa yêu cầu", "Not requested"),
    },
    "stall_reason": {
        "activity_failing": ("Một bước xử lý liên tục lỗi", "A step keeps failing"),
        "activity_paused": ("Một bước xử lý bị tạm dừng", "A step is paused"),
        "workflow_task_failing": ("Mã quy trình của hồ sơ liên tục lỗi", "The case's workflow code keeps failing"),
        "deadline_idle": ("Quá hạn mà không ai xử lý", "Overdue and nobody acts"),
    },
    "remedy": {
        "retry": ("Thử lại", "Retry"),
        "reset": ("Chạy lại từ điểm tốt", "Reset"),
        "nudge": ("Nhắc cơ quan", "Nudge"),
        "reassign": ("Chuyển cơ quan khác", "Reassign"),
    },
    "outcome": {
        "retried": ("Đã thử lại", "Retried"),
        "refused": ("Bị từ chối", "Refused"),
        "failed": ("Lỗi", "Failed"),
        "would_retry": ("Sẽ được thử lại", "Would be retried"),
    },
    #: The rules a repair is refused by (`ops.repairs`, `domain.repairs`, the case workflows).
    "rule": {
        "repair.role": ("Chỉ cán bộ vận hành được sửa hồ sơ.", "Only an operator may repair a case."),
        "repair.reason": ("Lý do phải có ít nhất 10 ký tự.", "A reason needs at least 10 characters."),
        "repair.not_found": ("Không có quy trình nào của hồ sơ này.", "There is no workflow of this case."),
        "repair.not_running": (
            "Quy trình của hồ sơ không còn chạy: không có gì để sửa.",
            "The case's workflow is not running: there is nothing to repair.",
        ),
        "idempotency.key_reused": (
            "Biểu mẫu này đã được dùng cho một yêu cầu khác: hãy mở lại trang và gửi lại; không có gì thay đổi.",
            "This form was already used for another request: reload the page and send it again; nothing changed.",
        ),
        "repair.opening": (
            "Hồ sơ đang được mở; hãy thử lại sau giây lát.",
            "The case is still being opened; try again shortly.",
        ),
        "repair.workflow_task_failing": (
            "Mã quy trình của hồ sơ đang lỗi: cần triển khai bản sửa rồi chạy lại từ điểm tốt.",
            "The case's workflow code is failing: deploy the fix, then reset the case.",
        ),
        "repair.retry.nothing_failing": (
            "Không có bước nào đang lỗi hay bị tạm dừng: không có gì để thử lại.",
            "No step is failing or paused: there is nothing to retry.",
        ),
        "repair.reset.nothing_failing": (
            "Mã quy trình không lỗi: hãy chỉ rõ sự kiện cần quay về.",
            "The workflow code is not failing: name the event to reset to.",
        ),
        "repair.reset.no_good_point": ("Không có điểm tốt nào để quay về.", "There is no good point to return to."),
        "repair.reset.point": (
            "Sự kiện đã chọn không phải một bước quy trình đã hoàn thành.",
            "The event named is not a completed workflow task.",
        ),
        "repair.reset.refused": ("Temporal từ chối việc chạy lại.", "Temporal refused the reset."),
        "repair.nudge.closed": (
            "Hồ sơ đã kết thúc: không còn ai để nhắc.",
            "The case is closed: there is nobody to nudge.",
        ),
        "repair.reassign.closed": (
            "Hồ sơ đã kết thúc: không còn gì để chuyển.",
            "The case is closed: there is nothing to reassign.",
        ),
        "repair.nudge.nobody": (
            "Không cơ quan nào còn nợ hồ sơ câu trả lời: không có ai để nhắc.",
            "No body owes the case an answer: there is nobody to nudge.",
        ),
        "repair.nudge.body": (
            "Cơ quan được nêu không nợ hồ sơ câu trả lời nào.",
            "The body named owes the case nothing.",
        ),
        "repair.reassign.body": ("Hãy nêu cơ quan nhận hồ sơ.", "Name the body the case goes to."),
        "repair.reassign.kind": (
            "Loại hồ sơ này không được chuyển bởi cán bộ vận hành.",
            "This kind of case is not reassigned by an operator.",
        ),
        "repair.refused": ("Quy trình của hồ sơ từ chối thao tác.", "The case's workflow refused it."),
        "temporal.error": ("Temporal báo lỗi.", "Temporal answered with an error."),
    },
    "event": {
        "PetitionReceived": ("Tiếp nhận đơn", "Petition received"),
        "Classified": ("Phân loại đơn", "Classified"),
        "NotProcessed": ("Không xử lý đơn", "Not processed"),
        "PetitionSplit": ("Tách đơn", "Split"),
        "AcceptanceDecided": ("Quyết định về việc thụ lý", "Acceptance decided"),
        "Forwarded": ("Chuyển đơn", "Forwarded"),
        "Redirected": ("Hướng dẫn người gửi đơn", "Redirected"),
        "Assigned": ("Giao người xử lý", "Assigned"),
        "VerificationStep": ("Xác minh", "Verification step"),
        "DialogueHeld": ("Tổ chức đối thoại", "Dialogue held"),
        "ExtensionGranted": ("Gia hạn giải quyết", "Extension granted"),
        "Suspended": ("Tạm đình chỉ", "Suspended"),
        "Resumed": ("Tiếp tục giải quyết", "Resumed"),
        "Withdrawn": ("Rút đơn", "Withdrawn"),
        "Terminated": ("Đình chỉ giải quyết", "Terminated"),
        "DecisionIssued": ("Ban hành quyết định, kết luận", "Decision issued"),
        "NotificationSent": ("Gửi thông báo", "Notification sent"),
        "ImplementationRecorded": ("Ghi nhận tổ chức thực hiện", "Implementation recorded"),
        "ExternalResultRecorded": ("Ghi nhận kết quả của cơ quan khác", "External result recorded"),
        "EscalatedSecondInstance": ("Khiếu nại lần hai", "Second-instance complaint"),
        "FrontSupervisionStarted": ("Mặt trận bắt đầu giám sát", "Front supervision started"),
        "Closed": ("Kết thúc hồ sơ", "Closed"),
        "Archived": ("Lưu hồ sơ", "Archived"),
        "CoordinationRequested": ("Đề nghị phối hợp", "Coordination requested"),
        "CoordinationResponded": ("Cơ quan phối hợp trả lời", "Coordination answered"),
        "DeadlineApproaching": ("Sắp đến hạn", "Deadline approaching"),
        "DeadlineBreached": ("Quá hạn", "Deadline breached"),
        "TaskAssigned": ("Giao nhiệm vụ", "Task assigned"),
        "TaskAcknowledged": ("Xác nhận nhận nhiệm vụ", "Task acknowledged"),
        "AcknowledgementEscalated": ("Báo cáo cấp trên việc chưa xác nhận", "Missing acknowledgement escalated"),
        "ProgressRecorded": ("Cập nhật tiến độ", "Progress recorded"),
        "ReportRequested": ("Yêu cầu báo cáo", "Report requested"),
        "ReportSubmitted": ("Nộp báo cáo", "Report submitted"),
        "ReportReviewed": ("Đánh giá báo cáo", "Report reviewed"),
        "ReportUrged": ("Đôn đốc báo cáo", "Report urged"),
        "ReportEscalated": ("Báo cáo cấp trên việc chậm báo cáo", "Late report escalated"),
        "InterimReviewed": ("Sơ kết", "Interim review"),
        "FinalReviewed": ("Tổng kết", "Final review"),
        "TaskClosed": ("Kết thúc nhiệm vụ", "Task closed"),
        "TaskReassigned": ("Chuyển giao nhiệm vụ", "Task reassigned"),
        "SubplanSubmitted": ("Nộp kế hoạch triển khai", "Sub-plan submitted"),
        "FrontWatchStarted": ("Mặt trận bắt đầu theo dõi", "Front watch started"),
        "FrontReminded": ("Mặt trận nhắc", "Front reminder"),
        "FrontUrged": ("Mặt trận đôn đốc", "Front urged"),
        "FrontRecommendationSent": ("Mặt trận gửi kiến nghị", "Front recommendation sent"),
        "FrontResponseReceived": ("Nhận trả lời kiến nghị", "Response received"),
        "FrontResponseAccepted": ("Chấp nhận trả lời", "Response accepted"),
        "FrontResponseDisputed": ("Không đồng ý với trả lời", "Response disputed"),
        "FrontEscalated": ("Mặt trận báo cáo cấp trên", "Front escalated"),
        "FrontSupervisionClosed": ("Kết thúc giám sát", "Supervision closed"),
        "RepairRecorded": ("Ghi nhận xử lý sự cố", "Repair recorded"),
        "BodyNudged": ("Nhắc cơ quan xử lý", "Body nudged"),
    },
}


def language_of(request: Request) -> Lang:
    """The page's language: `?lang=` when it names one, else the `lang` cookie, else Vietnamese."""
    for value in (request.query_params.get("lang"), request.cookies.get(LANG_COOKIE)):
        if value in LANGS:
            return value
    return DEFAULT_LANG


class Translator:
    """The catalogue in one language: `t("key", name=value)` and `t.label("kind", "complaint")`."""

    def __init__(self, lang: Lang) -> None:
        self.lang: Lang = lang
        self._index = LANGS.index(lang)

    def __call__(self, key: str, **values: object) -> str:
        pair = MESSAGES.get(key)
        if pair is None:
            log.warning("console: no message %r in the catalogue", key)
            return key
        text = pair[self._index]
        return text.format(**values) if values else text

    def label(self, group: str, code: str | None) -> str:
        """The name of `code` in `group` (`kind`, `status`, `role`, `side`, `report`, `event`); the code itself
        when the catalogue has none."""
        if code is None:
            return MESSAGES["common.none"][self._index]
        pair = LABELS.get(group, {}).get(code)
        return pair[self._index] if pair else code

    def labels(self, group: str) -> list[tuple[str, str]]:
        """Every (code, name) of `group`, in catalogue order."""
        return [(code, pair[self._index]) for code, pair in LABELS.get(group, {}).items()]
