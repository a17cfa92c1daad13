"""Generate the fictional Aurora Sync support tickets used as sample data.

Writes ``tickets.jsonl`` (about 600 tickets plus four deliberately broken lines) and
``tickets.csv`` (40 further tickets) next to this file. Everything is made up: the
product "Aurora Sync", the company "Nimbus Labs", every customer, email address, phone
number, card number (well-known Luhn-valid test numbers), IBAN (published example IBANs),
SSN-like number (never-issued 9xx / 123-45-6789 style) and street address.

The data is deliberately dirty so a cleaning stage has something to do: personal data in
bodies, exact re-submissions, whitespace/case-only re-submissions, near-duplicates,
leftover HTML, spoken fillers, quoted email replies, and four bad lines in the middle of
the JSONL file (malformed JSON, empty body, missing body, a JSON array).

Standard library only and fully deterministic: ``python generate_tickets.py``.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from pathlib import Path
from random import Random

SEED = 20261122
HERE = Path(__file__).resolve().parent
FIELDS = [
    "ticket_id",
    "created_at",
    "channel",
    "product_area",
    "subject",
    "body",
    "resolution",
    "customer_name",
    "customer_email",
]

N_BASE = 544          # ordinary tickets; 4 of them are turned into the bad lines
N_EXACT_DUP = 30      # identical subject+body+resolution, new id and date
N_SPACE_CASE_DUP = 15  # same text, only whitespace / letter case differ
N_NEAR_DUP = 15       # small edit: a word changed, a sentence added or dropped
N_CSV = 40
N_HTML_NOISE = 20
N_FILLER_NOISE = 20
N_QUOTED_REPLY = 10
# 1-based line numbers in tickets.jsonl that become the deliberately bad lines
BAD_LINES = {248: "malformed_json", 297: "empty_body", 353: "missing_body", 408: "json_array"}

# --------------------------------------------------------------------------------------
# People, companies and personal data (all fictional)
# --------------------------------------------------------------------------------------

FIRST_NAMES = [
    "Jane", "Mark", "Priya", "Tomás", "Aisha", "Liam", "Chen", "Olivia", "Mateo", "Fatima",
    "Noah", "Sofia", "Kwame", "Hannah", "Yuki", "Lukas", "Emma", "Ravi", "Zoë", "Daniel",
    "Ingrid", "Omar", "Grace", "Diego", "Mei", "Samuel", "Leila", "Patrick", "Ana", "Jonas",
    "Chloe", "Arjun", "Isabel", "Felix", "Nadia", "Ethan", "Camille", "Tariq", "Rosa", "Ben",
    "Hiroshi", "Marta", "Kofi", "Elena", "Victor", "Sara", "Malik", "Freya", "Luis", "Amara",
]
LAST_NAMES = [
    "Doe", "Ruiz", "Shah", "Okafor", "Lindqvist", "Nguyen", "Becker", "Fernández", "Kowalski",
    "O'Brien", "Tanaka", "Haddad", "Mensah", "Rossi", "Schmidt", "Patel", "Dubois", "Novak",
    "Moreau", "Andersen", "Kim", "Alvarez", "Hughes", "Ivanova", "Costa", "Brennan", "Achebe",
    "Yilmaz", "Larsen", "Morales", "Fischer", "Walsh", "Sato", "Mbeki", "Jansen", "Romero",
    "Whitfield", "Castillo", "Nakamura", "Delacroix", "Hartmann", "Quinn", "Osei", "Varga",
]
COMPANIES = [
    ("Brightwave Media", "brightwave.example"),
    ("Harborlight Design", "harborlight-design.example"),
    ("Kestrel & Moss Legal", "kestrelmoss.example"),
    ("Tidepool Analytics", "tidepool-analytics.example"),
    ("Orchard Lane Dental", "orchardlane.example"),
    ("Copperfield Architects", "copperfield-arch.example"),
    ("Northgate Logistics", "northgate.example"),
    ("Bluefinch Studio", "bluefinch.example"),
    ("Saltmarsh Accounting", "saltmarsh-cpa.example"),
    ("Verdant Labs", "verdantlabs.example"),
    ("Pinecrest School District", "pinecrest-sd.example"),
    ("Redwood Realty Group", "redwoodrealty.example"),
    ("Lumen Health Partners", "lumenhealth.example"),
    ("Foxglove Publishing", "foxglove.example"),
]
PERSONAL_DOMAINS = ["example.com", "example.org", "example.net", "mail.example", "inbox.example"]
JOB_TITLES = [
    "IT Admin", "Office Manager", "Head of Operations", "Systems Engineer", "Paralegal",
    "Finance Lead", "Creative Director", "Practice Manager", "DevOps Engineer", "CTO",
]
TEST_CARDS = [
    "4111 1111 1111 1111", "5555 5555 5555 4444", "3782 822463 10005", "4012 8888 8888 1881",
    "6011 1111 1111 1117", "5105 1051 0510 5100", "4111-1111-1111-1111", "5555555555554444",
    "378282246310005",
]
EXAMPLE_IBANS = [
    "DE89 3704 0044 0532 0130 00", "GB82 WEST 1234 5698 7654 32",
    "FR14 2004 1010 0505 0001 3M02 606", "NL91 ABNA 0417 1643 00",
    "ES91 2100 0418 4502 0005 1332", "DE89370400440532013000", "CH93 0076 2011 6238 5295 7",
]
STREETS = [
    "Larkspur Avenue", "Quarry Hill Road", "Elm Court", "Harbor View Drive", "Wexford Lane",
    "Mill Pond Street", "Juniper Way", "Cedar Hollow Road", "Beacon Street", "Old Forge Lane",
]
CITIES = [
    "Portland, OR 97205", "Austin, TX 78704", "Columbus, OH 43215", "Denver, CO 80203",
    "Raleigh, NC 27601", "Madison, WI 53703", "Leeds LS6 2AB, United Kingdom",
    "Galway H91 X2T4, Ireland", "Brisbane QLD 4000, Australia",
]
DEVICE_NAMES = [
    "LAPTOP-{UP}", "DESKTOP-HQ", "MACBOOK-{UP}", "WORK-PC-07", "STUDIO-MAC", "FRONTDESK-01",
    "THINKPAD-X1", "DESKTOP-RECEPTION", "MBP-{UP}", "home-desktop",
]
DESKTOP_OS = [
    "Windows 11", "Windows 10", "macOS 14 Sonoma", "macOS 15 Sequoia", "macOS 13 Ventura",
    "Ubuntu 24.04", "Fedora 40", "Windows 11 Pro", "Debian 12",
]
LINUX_OS = ["Ubuntu 24.04", "Ubuntu 22.04", "Fedora 40", "Debian 12", "Linux Mint 21.3", "Pop!_OS 22.04"]
VERSIONS = ["4.2.0", "4.2.1", "4.1.3", "4.1.5", "4.2.2", "4.0.9"]
FILES = [
    "budget_2026.xlsx", "Q3 report.docx", "thesis_final_v7.docx", "invoice-0423.pdf",
    "site-plan.dwg", "pitch-deck.key", "meeting notes.md", "contract_signed.pdf",
    "payroll_march.xlsx", "logo-final.psd", "wedding-edit.mp4", "inventory.csv",
]
FOLDERS = [
    "Projects", "Clients/Acme", "Photos/2019", "Design", "Finance", "Shared/Marketing",
    "Music", "Archive", "Clients/2026", "Scans", "Video Projects", "HR",
]
PHONES = [
    "iPhone 15", "iPhone 13 mini", "Pixel 8", "Galaxy S23", "iPad Air", "Redmi Note 12",
    "OnePlus 11", "iPhone 14 Pro", "Galaxy A54",
]
IDPS = ["Okta", "Microsoft Entra ID", "Azure AD", "Google Workspace", "OneLogin", "JumpCloud"]
WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

# --------------------------------------------------------------------------------------
# Problem catalogue: each entry is one problem type with several phrasings of the
# subject and the customer's message, and resolutions that match the documentation.
# Placeholders in braces are filled per ticket from `context()`.
# --------------------------------------------------------------------------------------

P = [
    # ---------------------------------------------------------------- sync
    dict(area="sync", subj=[
        "Stuck on 'Syncing {n} files'", "Sync never finishes", "files stuck pending for days",
        "Aurora stuck syncing"],
     body=[
        "The app has said 'Syncing {n} files' since yesterday morning and the number never goes down.",
        "My desktop client is stuck. The icon keeps spinning and {n} files are pending, nothing uploads.",
        "Sync seems frozen on my {os} machine. aurora status shows {n} pending and it has been like that for two days.",
        "For some reason {n} files just sit there as pending. Other files sync fine."],
     extra=["I already restarted the computer twice.", "Version {ver} if that matters.",
            "Internet is fine, everything else works."],
     res=[
        "A file that stays pending is usually locked by another program or has a name the server can't accept. Open the status window and check the Activity tab, which names the files that are waiting and why. Close any program that has them open, then quit Aurora Sync completely and start it again. If the count still doesn't move, run `aurora diag --bundle` and attach the zip to this ticket.",
        "Thanks for the details. Please open the status window and look at the Activity tab: it lists the pending files and the reason for each, most often a file held open by another app. After closing that app, quit Aurora Sync (⋯ → Quit) and restart it. If anything is still stuck, send us the output of `aurora diag --bundle` and we'll take a closer look."]),
    dict(area="sync", subj=[
        "New files not uploading", "Files in my Aurora folder don't show up on the web",
        "Uploads missing from web app", "some files never reach the cloud"],
     body=[
        "I put {file} in my Aurora folder this morning but it's not on the website.",
        "Some files I save into the Aurora folder never appear on my other computer or on the web.",
        "When I add files to {folder} they don't upload. There's a grey dash icon next to them.",
        "Files saved to the Aurora folder on {device} stay local. The web app doesn't show them."],
     extra=["Older files are all there.", "I'm on the Free plan.", "It's only some file types."],
     res=[
        "A grey dash icon means the file is ignored. Check for a `.auroraignore` file in that folder or any parent folder, since its patterns work like `.gitignore`. Some files are always ignored, such as `.DS_Store`, `Thumbs.db`, `desktop.ini` and names starting with `~$`. Also make sure you are not over your storage quota (5 GB on Free), because uploads stop when the quota is full.",
        "Files that stay local are usually either ignored or blocked by a full quota. Look for a `.auroraignore` file in the folder or its parents and remove the pattern that matches, and check Settings → Plan & billing for your storage usage. Also make sure the file really is inside the Aurora folder and not a shortcut to a file elsewhere."]),
    dict(area="sync", subj=[
        "What are these 'conflict copy' files?", "Conflict copies everywhere",
        "duplicate files with conflict copy in the name", "Got a conflicted copy of {file}"],
     body=[
        "I keep finding files like '{stem} (conflict copy from {device} 2026-03-14)'. What does that mean and which one is the right one?",
        "Several files in {folder} now have a twin with 'conflict copy' in the name.",
        "My colleague and I both edited {file} and now there are two versions.",
        "After working offline on the train I have conflict copies of a bunch of files."],
     extra=["I don't want to lose any edits.", "This never happened before.", "Can I turn this off?"],
     res=[
        "A conflict copy appears when the same file was changed in two places before they could sync, for example offline on two devices. The version that reached the server first keeps the original name, and the other one is saved as the conflict copy, so nothing is lost. Open both, move the changes you want into the original, then delete the copy. If one version should simply win, `aurora conflicts resolve \"<copy path>\" --keep copy` or `--keep original` does it in one step.",
        "Conflict copies can't be switched off because they are how Aurora Sync avoids throwing away anyone's edits. Compare the two files, copy what you need into the file with the original name and delete the conflict copy, and the warning clears on all devices. To avoid new ones, let sync finish (green tick) before closing your laptop and use apps with real co-editing for files several people edit at once."]),
    dict(area="sync", subj=[
        "Hundreds of conflict copies since last week", "Endless conflict copies",
        "conflict copies multiplying", "Sync loop creating copies"],
     body=[
        "Since last week every file in {folder} gets a new conflict copy every few minutes. We also have OneDrive on this machine.",
        "Our Aurora folder lives inside another sync tool's folder and now there are conflict copies of everything.",
        "Something is creating conflict copies nonstop on {device}. I moved the Aurora folder into my Google Drive folder recently.",
        "we have hundreds of conflict copies, it keeps going. another backup tool also watches the same folder."],
     extra=["Please help, it's filling the disk.", "This started after I reorganised my folders."],
     res=[
        "This happens when two sync tools manage the same folder: each one rewrites files the other just changed. Move the Aurora folder out of the other tool's folder (Preferences → Sync → Move folder), or exclude it in the other tool. Once only one tool touches the files the copies stop, and you can clean up with `aurora conflicts list` and delete the extra copies.",
        "Running two sync clients over the same folder is the most common cause of endless conflict copies. Please move the Aurora folder to a location the other tool doesn't watch, or stop the other tool for that folder. After that, `aurora conflicts list` shows what's left to tidy up. Older versions remain in version history if you delete something by mistake."]),
    dict(area="sync", subj=[
        "Deleted a folder on my laptop and it's gone everywhere", "Folder vanished from all devices",
        "URGENT deleted files need them back", "Removed {folder} to save space, now missing on desktop too"],
     body=[
        "I deleted {folder} on my laptop to free up space and now it's gone from my desktop and the web as well.",
        "I only wanted {folder} off my small laptop, so I deleted it. Now it's missing everywhere!!",
        "Deleted some folders on {device} and they disappeared from every device. I need them back.",
        "My son deleted {folder} from the family computer and it vanished on all our devices."],
     extra=["There were years of files in there.", "I'm on the Pro plan.", "Please tell me they're not lost."],
     res=[
        "Deleting a folder removes it from every device, but it isn't gone yet. Open the web app, go to Deleted files in the sidebar, select the folder and click Restore, and it comes back to its original place on all devices. Deleted files are kept for 30 days on Free, 180 on Pro and 365 on Team. Next time, use selective sync (Preferences → Sync → Choose folders) to remove a folder from one computer only.",
        "Good news: deleted folders can be restored from Deleted files in the web app as long as you're within your plan's window (30 days on Free, 180 on Pro). Select the folder and click Restore. If you want something off one computer without deleting it, untick it under selective sync instead. Excluded folders stay in the cloud and on your other devices."]),
    dict(area="sync", subj=[
        "Sync is extremely slow", "Upload speed terrible", "Why is Aurora so slow?",
        "Initial upload taking forever"],
     body=[
        "Uploading {gb} GB is taking days. My connection is 300 Mbit but Aurora uses a fraction of it.",
        "Sync got really slow on {device}. Small changes take ages to show up on my other machine.",
        "Initial upload of my {folder} folder is crawling, about 200 KB/s.",
        "Why does it take an hour to sync a folder with tons of tiny files?"],
     extra=["I'm on a VPN for work most of the day.", "Both computers are in the same office.",
            "We're on {os}."],
     res=[
        "First check Preferences → Network → Bandwidth. If an upload limit was set, switch it back to automatic. VPNs often cut throughput a lot, so try once with the VPN off if your company allows it. Folders with many thousands of tiny files sync more slowly than a few large ones, so consider archiving ones you rarely change. If your computers are on the same network and you're on Pro or Team, make sure LAN sync is enabled so they copy data directly.",
        "Slow sync usually comes down to a bandwidth limit, a VPN, or very many small files. Please check Preferences → Network → Bandwidth, try without the VPN, and let us know the speed you see. On Pro and Team, LAN sync copies files directly between computers on the same network, which helps a lot in an office."]),
    dict(area="sync", subj=[
        "'Too many folders to watch' warning on Linux", "inotify warning", "Changes picked up late on Linux"],
     body=[
        "On {linux} I get 'Too many folders to watch — some changes may be picked up late'. What should I do?",
        "Aurora on my Linux box only notices changes every 10 minutes or so and shows a watch limit warning.",
        "Getting a warning about folder watches on {linux}. My Aurora folder has a huge source tree in it."],
     extra=["It's a dev machine with lots of git repos.", "Version {ver}."],
     res=[
        "Aurora Sync uses inotify and your folder has more subfolders than the system's watch limit, so it falls back to scanning every 10 minutes. Raise the limit with `echo \"fs.inotify.max_user_watches=524288\" | sudo tee /etc/sysctl.d/60-aurora.conf` followed by `sudo sysctl --system`, then run `aurora restart`. If the folders are build output or dependencies, excluding them with `.auroraignore` also helps.",
        "That warning means the inotify watch limit is too low for your folder tree. Set `fs.inotify.max_user_watches=524288` in `/etc/sysctl.d/60-aurora.conf`, apply it with `sudo sysctl --system` and restart the app with `aurora restart`. Changes will then be picked up immediately again."]),
    dict(area="sync", subj=[
        "Sync paused: 'Unusual activity detected'", "Why did Aurora pause itself?",
        "Unusual activity warning - is this a virus?"],
     body=[
        "Aurora paused sync on {device} with a message saying 'Unusual activity detected'. I did rename a few thousand photos with a batch tool today.",
        "Got an 'Unusual activity detected' warning and sync is paused. A lot of my files now have a strange extension I don't recognise.",
        "The app stopped syncing and says unusual activity. Is my computer infected?"],
     extra=["I haven't clicked resume yet.", "Should I be worried?"],
     res=[
        "Aurora Sync pauses when it sees mass renames with unknown extensions, which is a typical sign of ransomware. If you made the changes yourself (for example a batch rename), you can safely click Resume in the status window. If files now have extensions you don't recognise, keep sync paused, disconnect the computer from the network and unlink it under Settings → Devices. Then use Rewind on the affected folders from a clean device, choosing a moment before the problem started.",
        "This is our ransomware protection: sync is paused so damaged files don't overwrite your good copies in the cloud. If the renames were intentional, just resume from the status window. If not, don't resume. Unlink the device in the web app and restore the folders with Rewind (Pro/Team) or per-file version history from another device."]),
    dict(area="sync", subj=[
        "Online-only files show 0 bytes on Mac", "Files empty after waking Mac",
        "Finder shows 0 KB for cloud files"],
     body=[
        "After my MacBook wakes from sleep, online-only files in Finder show as 0 bytes and won't open.",
        "On {macos}, some files with the cloud icon show 0 bytes. Opening them does nothing.",
        "Cloud files appear empty in Finder every morning until I restart Aurora."],
     extra=["I'm on {ver}.", "Restarting the app fixes it temporarily."],
     res=[
        "This was a known issue in versions before 4.2, where online-only files could show as 0 bytes after waking from sleep. Please update via Help → Check for updates. Version 4.2 fixes it. Until then, restarting the app clears it, and for files you need right away you can choose Aurora Sync → Always keep on this device.",
        "Thanks for reporting this. It's fixed in Aurora Sync 4.2, so please update from Help → Check for updates. Also confirm that the file provider extension is allowed under System Settings → Privacy & Security, since online-only files depend on it."]),
    dict(area="sync", subj=[
        "Error E-FS-512 on some files", "Files with weird names won't sync on Windows",
        "E-FS-512"],
     body=[
        "A handful of files fail with error E-FS-512 on Windows. They were created on a Mac and their names end in a space.",
        "Windows client shows E-FS-512 for files in {folder}. Some names end with a dot.",
        "Some files from my colleague's Mac never appear on my PC, and the log says E-FS-512."],
     extra=["Version {ver}.", "Renaming them manually is a lot of work."],
     res=[
        "Windows doesn't allow file names ending in a space or a dot, which triggers E-FS-512 in older versions. Aurora Sync 4.2 handles this by renaming such files safely and showing a notification, so please update via Help → Check for updates. On older versions, rename the files on the Mac to remove the trailing character.",
        "E-FS-512 comes from file names that end in a space or dot, which Windows can't store. Updating to 4.2 or later fixes it automatically. The app renames those files safely and tells you what changed."]),
    dict(area="sync", subj=[
        "Folder missing on new laptop", "Not all folders synced to new computer",
        "{folder} isn't on my new PC"],
     body=[
        "I set up Aurora on my new laptop but {folder} never downloaded. It's on the web and on my old computer.",
        "New work laptop, same account, but some folders are missing locally.",
        "On my new {os} machine the folder {folder} isn't there at all."],
     extra=["Our company is on the Team plan.", "Everything else synced fine."],
     res=[
        "The folder is probably excluded by selective sync on the new device. Open Preferences → Sync → Choose folders and tick it, or run `aurora selective-sync include \"{folder}\"`. On Team plans an admin can set default exclusions for new devices under Policies → Sync, and if they locked those settings you'll need to ask them.",
        "Each device has its own selective sync list, and new devices on Team plans can start with default exclusions set by your admin. Check Preferences → Sync → Choose folders and tick the missing folder. It will then download in full. If the checkbox is greyed out, your admin has locked selective sync settings."]),
    dict(area="sync", subj=[
        "Strange '(selective sync conflict)' folder", "What is a selective sync conflict folder?"],
     body=[
        "I now have a folder called '{folder_leaf} (selective sync conflict)'. What happened?",
        "There's a new folder with '(selective sync conflict)' in its name on {device}.",
        "Found a selective sync conflict folder after I recreated {folder} locally."],
     extra=["I'm worried I lost something."],
     res=[
        "That happens when you create a folder locally with the same name as one excluded by selective sync. Aurora Sync can't merge them safely, so it renames your local folder and leaves the cloud copy alone. Nothing is lost. Move the files you need into an included folder, or include the original folder again via Preferences → Sync → Choose folders.",
        "The folder was renamed because a folder of the same name is excluded from this device via selective sync. Both copies are intact. Include the cloud folder again if you want it here, then move your local files into it and delete the conflict folder."]),
    dict(area="sync", subj=[
        "Can I put the Aurora folder on my NAS?", "Aurora folder on network drive",
        "Use SMB share as sync folder"],
     body=[
        "I'd like to move my Aurora folder to our Synology NAS mounted over SMB. Is that supported?",
        "Can the Aurora folder live on a network share? Our files are on a file server.",
        "Tried to set the Aurora folder to a mapped drive Z: and the app refused."],
     extra=["We have about {gb} GB of data."],
     res=[
        "The Aurora folder must be on a local drive. Network shares (SMB, NFS) and removable drives that are sometimes unplugged aren't supported, because change notifications and file locking over the network aren't reliable enough. Keep the Aurora folder on a local disk, and use selective sync if space is tight.",
        "Sorry, network drives aren't supported as the Aurora folder. The app needs a local filesystem to notice changes reliably. Run Aurora Sync on a computer with local storage instead. Selective sync lets you choose which folders that computer keeps."]),
    dict(area="sync", subj=[
        "LAN sync finds no peers", "LAN sync not working in office", "aurora lan status shows 0 peers"],
     body=[
        "We have three Pro computers in the same office but `aurora lan status` says 0 peers found.",
        "LAN sync doesn't seem to work. Everything downloads from the internet even though the other PC is next to me.",
        "LAN sync stopped working between {device} and my desktop after we changed routers."],
     extra=["Both are on {os}.", "Our Wi-Fi is a guest network at a coworking space."],
     res=[
        "Peers find each other with a broadcast on UDP 47123 and transfer over TCP 47124. Both ports must be allowed on the local network, and broadcasts don't cross routers or VLANs. On Windows, check the network is set to Private, not Public. Guest or coworking Wi-Fi usually has client isolation, which blocks LAN sync entirely. Also make sure both computers run 4.2, since a 4.0 client falls back to cloud downloads.",
        "Please confirm both computers are on the same subnet with LAN sync enabled under Preferences → Network, and that UDP 47123 and TCP 47124 aren't blocked. Windows blocks LAN sync on networks marked Public. Note that vault files never travel over LAN sync, so those always come from the cloud."]),
    dict(area="sync", subj=[
        "LAN sync option greyed out", "Can't enable LAN sync", "Where is LAN sync?"],
     body=[
        "The 'Enable LAN sync' checkbox is greyed out in my preferences.",
        "I read about LAN sync but I can't turn it on.",
        "Why can't I use LAN sync between my two home computers?"],
     extra=["I'm on the Free plan for now."],
     res=[
        "LAN sync is part of the Pro and Team plans, which is why it's greyed out on a Free account. If you upgrade under Settings → Plan & billing, it turns on automatically in the desktop apps. Mobile apps don't take part in LAN sync.",
        "LAN sync is available on Pro and Team. On Free the option is shown but disabled. Once you upgrade it's enabled by default, and your computers on the same network will exchange data directly."]),
    dict(area="sync", subj=[
        "Overwrote a file, need the old version", "Restore previous version of {file}",
        "Saved over my document by accident"],
     body=[
        "I accidentally saved over {file} this afternoon. Can I get yesterday's version back?",
        "Someone replaced {file} in our shared folder with an old copy. How do I restore the version from this morning?",
        "Excel crashed and {file} is now corrupted. Is there a backup?"],
     extra=["It's due tomorrow.", "I'm on the {plan} plan."],
     res=[
        "Yes. In the web app, click ⋯ next to the file and choose Version history, then preview the version you want and click Restore. It becomes the newest version and nothing in the history is lost. From a terminal, `aurora versions \"<path>\"` lists versions and `aurora restore \"<path>\" --version <id>` restores one. Add `--to <path>` to restore it as a separate file instead.",
        "Every save keeps the previous version in the cloud, so you can go back. Right-click the file and choose Aurora Sync → Version history (or use ⋯ → Version history in the web app), pick yesterday's version and click Restore. The history window is 30 days on Free, 180 on Pro and 365 on Team."]),
    dict(area="sync", subj=[
        "Need a version from 8 months ago", "Version history doesn't go back far enough",
        "Older versions missing"],
     body=[
        "I need a version of {file} from last year but version history only shows the last six months. I'm on Pro.",
        "Why can't I see versions older than 30 days?",
        "Our auditor needs a file as it was 9 months ago. History stops after 180 days."],
     extra=["Can you pull it from a backup on your side?"],
     res=[
        "Version history covers 30 days on Free, 180 days on Pro and 365 days on Team, and versions older than that are removed and can't be recovered by support either. Team admins can extend retention up to 10 years with the Retention add-on, but that only applies from when it's enabled onwards. For long-term records we recommend a separate offline backup too.",
        "I'm sorry, versions older than your plan's window (30 days on Free, 180 on Pro, 365 on Team) are no longer stored, and we have no separate copy to restore from. Upgrading or adding the Team Retention add-on only extends history from that point on. It can't bring back versions that have already expired."]),
    dict(area="sync", subj=[
        "Ransomware encrypted my files", "All my files have a weird extension",
        "HELP files encrypted"],
     body=[
        "All files in {folder} are now called something like '{stem}.locked' and won't open. I think it's ransomware.",
        "Our office PC got hit by ransomware last night and the encrypted files synced to everyone.",
        "Everything in my Aurora folder got encrypted. Can I get my files back?"],
     extra=["I have the {plan} plan.", "IT has taken the PC offline."],
     res=[
        "First disconnect the infected computer from the network and unlink it under Settings → Devices so it can't upload more damaged files. Then, from a clean device, open the affected folder in the web app and use ⋯ → Rewind this folder (Pro and Team), choosing a time before the attack. Files created after that moment go to Deleted files, so a rewind can be undone. On the Free plan, restore each file from its version history instead.",
        "We're sorry this happened. Unlink the infected device right away (Settings → Devices), then use Rewind on the affected folders from a clean computer, picking a moment before the encryption started. Rewind runs in the background and emails you when it's done. Please don't reconnect the infected PC until it has been cleaned."]),
    dict(area="sync", subj=[
        "Permanently delete a confidential file", "Need file removed including history",
        "Uploaded wrong document, must be gone for good"],
     body=[
        "I put a confidential contract into the wrong shared folder. I deleted it but I need it gone completely, including older versions.",
        "How do I make sure a deleted file is really gone from your servers?",
        "We accidentally synced {file} with personal data. Deleting isn't enough, it's still in Deleted files."],
     extra=["Our DPO is asking.", "This is a compliance issue."],
     res=[
        "Open Deleted files in the web app, select the file and choose Delete permanently. That removes the file and all its versions and can't be undone, not even by Nimbus Labs support. On Team plans with the Protect history policy enabled, only an admin can permanently delete, so ask your admin if the option is disabled for you.",
        "Use Deleted files → select the item → Delete permanently. This erases every version. If the file was moved into place over several edits, check Version history for other paths too. On Team accounts, an admin may need to do it if Protect history is switched on."]),
    dict(area="sync", subj=[
        "Do old versions use up my storage?", "Storage quota and version history",
        "Why is my usage lower than expected?"],
     body=[
        "Do old versions of files count towards my 2 TB?",
        "I edit big video files daily. Will version history fill up my quota?",
        "Quick question: is version history included in my storage usage?"],
     extra=[],
     res=[
        "No. Only the current version of each file counts towards your storage quota, and older versions are kept at no cost to your quota for the length of your plan's history window. Files larger than 50 GB keep only the current version.",
        "Version history doesn't count towards your quota, only the current version of each file does. You can edit as often as you like without filling up your storage with old versions."]),
    # ---------------------------------------------------------------- install
    dict(area="install", subj=[
        "apt update fails with NO_PUBKEY", "GPG error on Aurora repository",
        "Repository signature error on {linux}"],
     body=[
        "Running apt update gives 'NO_PUBKEY' for the Aurora Sync repository.",
        "After upgrading to {linux}, apt complains the aurora-sync repository isn't signed.",
        "I followed the Linux guide but apt says 'The following signatures couldn't be verified'."],
     extra=["I used apt-key years ago when I first installed it."],
     res=[
        "The key needs to be in `/usr/share/keyrings/nimbus-labs.gpg` and referenced with `signed-by` in the source line. Re-import it with `curl -fsSL https://pkg.aurorasync.example/nimbus-labs.gpg | sudo gpg --dearmor -o /usr/share/keyrings/nimbus-labs.gpg` and make sure `/etc/apt/sources.list.d/aurora-sync.list` contains `[signed-by=/usr/share/keyrings/nimbus-labs.gpg]`. Then run `sudo apt update` again.",
        "Older installs used the deprecated apt-key, which newer releases ignore. Please re-add the key into /usr/share/keyrings/nimbus-labs.gpg as shown in the Installing on Linux guide and use the signed-by form of the deb line. After that apt update works and you'll keep getting updates."]),
    dict(area="install", subj=[
        "No tray icon on Ubuntu", "Aurora icon missing in GNOME", "Can't see the app after starting it"],
     body=[
        "I installed Aurora Sync on {linux} but there is no icon anywhere. Is it even running?",
        "The tray icon doesn't show up on GNOME. Files seem to sync though.",
        "After starting the app nothing appears on my panel."],
     extra=["I'm using the default desktop."],
     res=[
        "Stock GNOME has no system tray, so the icon has nowhere to appear. Install the 'AppIndicator and KStatusNotifierItem Support' extension and the icon will show. The app syncs normally without it, and `aurora status` in a terminal always shows what it's doing.",
        "The app is running, and GNOME just hides tray icons by default. Adding the AppIndicator extension brings the icon back. In the meantime you can check sync with `aurora status`."]),
    dict(area="install", subj=[
        "Install on headless server", "How to log in without a GUI", "Aurora on a Linux server"],
     body=[
        "I want to run Aurora on a headless {linux} server to back up some folders. There's no browser there, how do I sign in?",
        "How do I link a server without a desktop environment?",
        "Is there a CLI-only way to set up Aurora Sync on a VPS?"],
     extra=["It's for our nightly exports."],
     res=[
        "Yes. Install the package, then run `aurora login --device-name <name>`. It prints a URL and a short code; open the URL on any device, enter the code, and the server is linked. Then start the service with `systemctl --user enable --now aurora-sync.service`. If it should run without you being logged in, also run `loginctl enable-linger <user>`.",
        "The `aurora` CLI works without a graphical desktop. Use `aurora login --device-name build-server-01`, complete the code on another device, then enable the user service with systemctl. Configuration lives in ~/.config/aurora/config.toml."]),
    dict(area="install", subj=[
        "Alpine Linux support?", "Doesn't run on musl", "AppImage fails on Alpine"],
     body=[
        "Tried the AppImage on Alpine and it fails immediately. Is Alpine supported?",
        "Does Aurora Sync work on musl-based distros?",
        "Our containers are Alpine based, can we run the aurora CLI there?"],
     extra=[],
     res=[
        "Sorry, Alpine and other musl-based systems aren't supported. The AppImage needs glibc 2.35 or newer. Supported distributions include Ubuntu 22.04/24.04, Debian 12, Fedora 39+, Linux Mint 21+ and openSUSE Leap 15.5+. A Debian- or Ubuntu-based container works fine.",
        "Aurora Sync requires glibc 2.35 or later, so musl-based distributions like Alpine can't run it. A Debian 12 or Ubuntu base image is the easiest alternative."]),
    dict(area="install", subj=[
        "ARM64 Linux build?", "Raspberry Pi support", "aarch64 package"],
     body=[
        "Is there a version for ARM Linux? I'd like to run it on a Raspberry Pi 5.",
        "Do you have an aarch64 build? I have a new ARM laptop running {linux}.",
        "The deb package won't install on my ARM board."],
     extra=[],
     res=[
        "Yes. Since version 4.2 we publish native ARM64 (aarch64) .deb, .rpm and AppImage builds. If you use our package repository, `sudo apt install aurora-sync` picks the right architecture automatically. Otherwise download the aarch64 AppImage from the web app.",
        "Native aarch64 builds are available from Aurora Sync 4.2 onwards, as .deb, .rpm and AppImage. Please make sure you're installing 4.2 or later; earlier versions were x86_64 only."]),
    dict(area="install", subj=[
        "Installer asks for admin password", "Can't install on work laptop without admin",
        "Windows installer needs administrator"],
     body=[
        "Our work laptops don't give us admin rights and the installer asks for an admin password.",
        "The Windows installer keeps prompting for administrator credentials.",
        "Can I install Aurora Sync without admin rights on Windows?"],
     extra=["IT takes weeks to respond."],
     res=[
        "A per-user install on Windows doesn't need administrator rights. Run AuroraSyncSetup and leave 'Install for all users' unticked, since only that option requires admin. If your IT policy blocks running installers at all, your IT team will need to deploy it for you.",
        "Please run the installer again and choose the default per-user install. 'Install for all users' is what triggers the admin prompt. It's only needed on shared machines."]),
    dict(area="install", subj=[
        "Online-only files not working on Mac", "Cloud icons missing in Finder",
        "File provider extension"],
     body=[
        "On my new Mac I can't make files online-only, the option is missing.",
        "Finder doesn't show the cloud icons and everything downloads fully.",
        "I think I clicked 'Don't allow' on a popup during setup and now online-only files don't work."],
     extra=["{macos}."],
     res=[
        "Online-only files need the Aurora Sync file provider extension. Open System Settings → Privacy & Security, allow the extension for Aurora Sync, then restart the app. After that, right-click a file and choose Aurora Sync → Make online-only.",
        "It sounds like the file provider extension wasn't allowed on first launch. Allow it under System Settings → Privacy & Security and restart Aurora Sync. The cloud icons and the Make online-only option will then appear."]),
    dict(area="install", subj=[
        "AppImage doesn't update", "Still on old version with AppImage", "How to update the AppImage?"],
     body=[
        "I use the AppImage and I'm still on {ver}. Doesn't it update itself?",
        "Release notes say 4.2 is out but my AppImage never updated.",
        "What's the best way to keep the AppImage up to date?"],
     extra=[],
     res=[
        "The AppImage doesn't update itself. Use Help → Check for updates to download the newest one, or switch to our apt/dnf repository so updates arrive with your normal system updates.",
        "AppImages can't update themselves, so you need to download new versions manually (Help → Check for updates). For automatic updates, install from the package repository as described in Installing on Linux."]),
    dict(area="install", subj=[
        "Flatpak version broken", "Problem with Flatpak package", "Flathub Aurora Sync outdated"],
     body=[
        "The Flatpak from Flathub crashes on start.",
        "Installed Aurora from Flathub and it can't see my home folder.",
        "Flatpak version is still on 4.1, when will it be updated?"],
     extra=[],
     res=[
        "The Flatpak is published by a community member and isn't maintained by Nimbus Labs, so please report issues to its maintainer. For a supported install, use our .deb or .rpm packages from the repository, or the official AppImage.",
        "We don't maintain the Flatpak package ourselves. Please use the official packages or AppImage, which we test on every release, and report Flatpak-specific issues to the community maintainer."]),
    # ---------------------------------------------------------------- network
    dict(area="network", subj=[
        "E-NET-101 can't reach servers", "Can't connect from office network",
        "Error E-NET-101"],
     body=[
        "At the office Aurora shows E-NET-101 'Can't reach Aurora servers'. At home it works.",
        "Getting E-NET-101 on all our office machines since IT changed the firewall.",
        "The app just says Connecting... and then E-NET-101."],
     extra=["The website loads in the browser."],
     res=[
        "E-NET-101 means the app couldn't open a connection at all, usually because of a firewall. Aurora Sync needs outgoing HTTPS on TCP 443 to app., api., sync., blocks. and notify.aurorasync.example; notify also uses WebSockets. Please ask IT to allow *.aurorasync.example. If you're on public Wi-Fi, open a browser first in case there's a captive portal to accept.",
        "If the app works on other networks, the office firewall is most likely blocking one of our hosts. Ask IT to allow outgoing TCP 443 to *.aurorasync.example, including WebSocket connections to notify.aurorasync.example. If that doesn't fix it, send us a diagnostics bundle from `aurora diag --bundle`."]),
    dict(area="network", subj=[
        "E-TLS-203 secure connection could not be verified", "Certificate error E-TLS-203",
        "TLS error behind corporate proxy"],
     body=[
        "Aurora fails with E-TLS-203 on our corporate laptops.",
        "Since installing a new antivirus I get 'Secure connection could not be verified'.",
        "E-TLS-203 on every machine behind our proxy."],
     extra=["Other apps work fine."],
     res=[
        "E-TLS-203 means something between you and our servers presented a certificate Aurora Sync doesn't trust, almost always a proxy or antivirus inspecting HTTPS. Aurora Sync pins its certificates and won't accept interception certificates. Ask IT to exclude *.aurorasync.example from TLS inspection, or turn off HTTPS scanning/web shield for Aurora Sync in your antivirus.",
        "This is caused by HTTPS inspection. Aurora Sync only trusts its own pinned certificates. Please exclude *.aurorasync.example from TLS inspection on the proxy or in the antivirus product, and the error goes away."]),
    dict(area="network", subj=[
        "E-PROXY-407", "Proxy authentication required error", "How do I set a proxy?"],
     body=[
        "Our network uses an authenticated proxy and Aurora shows E-PROXY-407.",
        "How do I configure proxy credentials in Aurora Sync?",
        "Getting proxy authentication required on {os}."],
     extra=["Our proxy is proxy.corp.example on port 8080."],
     res=[
        "Open Preferences → Network → Proxy, choose Manual and enter the proxy address, port and credentials. By default the app uses the system proxy settings including PAC files. From the CLI: `aurora config set network.proxy \"http://proxy.corp.example:8080\"`, then `aurora restart`. NTLM and Kerberos proxy authentication are supported on Windows only.",
        "E-PROXY-407 means the proxy wants credentials. Set them under Preferences → Network → Proxy (Manual), or with `aurora config set network.proxy ...` and `network.proxy_auth basic`. If your proxy requires NTLM or Kerberos, note that's only supported on Windows."]),
    dict(area="network", subj=[
        "Session expired E-AUTH-301", "Keeps asking me to sign in again", "E-AUTH-301 after password change"],
     body=[
        "I changed my password and now the desktop app shows E-AUTH-301.",
        "Aurora says my session expired. Will it download everything again if I sign in?",
        "Got E-AUTH-301 on {device} this morning."],
     extra=[],
     res=[
        "E-AUTH-301 means the sign-in on this device is no longer valid, for example after a password change, an admin sign-out, or unlinking the device. Click Sign in again. Your files aren't re-downloaded; the app only verifies them.",
        "Just click Sign in again. After a password change all device sessions need a fresh sign-in. The app checks your existing files rather than downloading them again, so it's quick."]),
    dict(area="network", subj=[
        "E-NET-104 DNS lookup failed", "DNS error", "Aurora can't resolve hostnames"],
     body=[
        "Getting E-NET-104 since I set up a Pi-hole at home.",
        "Aurora says DNS lookup failed but every website works.",
        "E-NET-104 on my laptop when using our ad-blocking DNS."],
     extra=[],
     res=[
        "E-NET-104 means our host names couldn't be resolved. Ad-blocking DNS services sometimes block notify. hosts by mistake, so please add *.aurorasync.example to the allowlist. You can also flush the DNS cache (ipconfig /flushdns on Windows, sudo dscacheutil -flushcache on macOS, resolvectl flush-caches on Linux).",
        "Please allowlist *.aurorasync.example in your DNS filter. notify.aurorasync.example is the one most often blocked. Flush the DNS cache afterwards and restart the app."]),
    dict(area="network", subj=[
        "Not syncing in hotel Wi-Fi", "Aurora won't connect on public Wi-Fi", "Airport Wi-Fi no sync"],
     body=[
        "I'm travelling and Aurora won't connect from the hotel Wi-Fi.",
        "At the airport the app just stays on Connecting...",
        "On café Wi-Fi sync doesn't start at all."],
     extra=["My phone hotspot works."],
     res=[
        "Hotel and airport networks often have a captive portal, a page where you must accept terms before anything else can connect. Open any website in a browser, complete the portal, then restart Aurora Sync. Your changes are kept locally and will upload once connected.",
        "Please open a browser and check whether the network wants you to log in or accept terms first. Until you do, apps like Aurora Sync can't reach the internet. Nothing is lost in the meantime."]),
    dict(area="network", subj=[
        "E-RATE-429 too many requests", "Sync slowed down, rate limited", "E-RATE-429 on desktop"],
     body=[
        "The app shows E-RATE-429 and sync is really slow.",
        "We get E-RATE-429 on one workstation every afternoon.",
        "What does 'Too many requests' mean? I'm just syncing normally."],
     extra=["We run an automated export job on that machine."],
     res=[
        "E-RATE-429 means the device is sending an unusual number of requests, often because another program rewrites thousands of files in a loop. Sync slows down automatically and recovers within 15 minutes. Check the activity log for the busiest folders and, if it's an export or build job, exclude its output folder with `.auroraignore`.",
        "This usually points to a program that keeps rewriting many files. Find which folder is busiest in the activity log and either change the job or exclude that folder with `.auroraignore`. The slowdown lifts by itself within 15 minutes."]),
    # ---------------------------------------------------------------- billing
    dict(area="billing", subj=[
        "Charged twice this month", "Double charge on my card", "Two payments for one subscription"],
     body=[
        "I was charged twice for my Pro subscription this month.",
        "My bank statement shows two charges from Nimbus Labs on the same day.",
        "Why did you take two payments? I only have one account!"],
     extra=["Please refund one of them asap.", "I'm on monthly billing."],
     res=[
        "Sorry about the worry. Often one of the two is a pending authorisation from a payment attempt that wasn't completed (for example a 3-D Secure check), which drops off by itself within a few business days. If both charges show as completed under Settings → Plan & billing → Invoices, reply here and we'll refund the duplicate to your original payment method (5–10 business days). Please never send us your card number; we don't need it.",
        "We checked your account and see one completed payment and one authorisation that didn't go through. The second amount will be released by your bank within a few business days. If it's still there after a week, let us know and we'll investigate. For your safety, please don't share card numbers with support."]),
    dict(area="billing", subj=[
        "Refund for annual plan", "Cancel and refund yearly subscription",
        "Renewed by mistake, want money back"],
     body=[
        "My annual Pro plan renewed yesterday and I don't need it anymore. Can I get a refund?",
        "I bought the yearly plan 5 days ago but it's not for me. How do I get my money back?",
        "Forgot to cancel before renewal. Can you refund the annual charge?"],
     extra=["I'm happy to go back to Free."],
     res=[
        "Annual plans are fully refundable if you cancel within 14 days of the purchase or renewal date, so you're covered. Go to Settings → Plan & billing → Cancel plan and choose the refund option, or reply from the account's owner email and we'll process it. The refund goes back to your original payment method and takes 5–10 business days.",
        "You're within the 14-day window for annual plans, so you'll get a full refund. Cancel under Plan & billing → Cancel plan. If your account goes over 5 GB on Free, it becomes read-only but nothing is deleted."]),
    dict(area="billing", subj=[
        "Refund for monthly plan", "Want money back for this month", "Cancelled, refund please"],
     body=[
        "I cancelled my monthly subscription, can I get this month refunded?",
        "I only used Pro for 3 days this month, please refund the rest.",
        "Want to cancel my monthly plan and get a refund for the current month."],
     extra=[],
     res=[
        "Monthly plans aren't refunded, but when you cancel you keep all Pro features until the end of the month you've paid for, and you won't be charged again. After that the account moves to Free.",
        "We don't refund monthly plans, sorry. You can cancel any time under Plan & billing → Cancel plan and keep access until the end of the paid period. Nothing is deleted when the account moves to Free."]),
    dict(area="billing", subj=[
        "Payment failed", "Renewal payment declined", "Card expired, account downgraded?"],
     body=[
        "I got an email saying my renewal payment failed. My card expired last month.",
        "Payment keeps getting declined even though the card is fine.",
        "My account was moved to Free because of failed payments. How do I fix this?"],
     extra=["The bank app showed something pending."],
     res=[
        "When a renewal fails we retry after 3, 5 and 10 days, and your plan keeps working meanwhile. Update your card under Plan & billing → Payment method → Update and we'll retry right away. Common causes are an expired card, a card that blocks recurring or foreign transactions, and a 3-D Secure confirmation waiting in your bank app. If all retries failed, just upgrade again and everything is restored.",
        "Please update the card under Settings → Plan & billing → Payment method. If the card is valid, check your bank app for a pending 3-D Secure approval, or ask your bank to allow recurring payments to Nimbus Labs. If your account was already moved to Free, upgrading again restores all Pro features immediately."]),
    dict(area="billing", subj=[
        "Need VAT number on invoice", "Company name missing on invoice", "Invoice details wrong"],
     body=[
        "Our invoices don't show our company name and VAT ID. Accounting needs them.",
        "Can you add our VAT number to the last three invoices?",
        "The invoice has my personal name, it should be {company}."],
     extra=["We need them for the quarterly return."],
     res=[
        "Go to Settings → Plan & billing → Invoices → Billing details and add the company name, address and VAT number. New invoices use them automatically. For invoices from the last 12 months, click Regenerate next to each one to reissue it with the new details.",
        "You can add company details and a VAT ID under Plan & billing → Billing details, then use Regenerate on invoices from the last 12 months. Team admins can also add a separate billing email so invoices go straight to accounting."]),
    dict(area="billing", subj=[
        "Can't upload after downgrade", "Account read-only?", "Downgraded to Free, sync stopped"],
     body=[
        "I downgraded to Free and now I can't upload anything. It says the account is read-only.",
        "My Pro plan ended and sync stopped. Are my files going to be deleted?",
        "After cancelling, the app says I'm over my quota."],
     extra=["I have about {gb} GB stored."],
     res=[
        "When an account on Free has more than 5 GB stored it becomes read-only: you can view, download, move and delete files, but not upload or sync new changes. Nothing is deleted, and your files stay available for at least 12 months. Delete files to get under 5 GB, or upgrade again, and sync resumes.",
        "Your files are safe. Over the 5 GB Free limit the account is read-only, not deleted. Free up space or upgrade under Plan & billing to resume syncing."]),
    dict(area="billing", subj=[
        "Pay by invoice / bank transfer", "Can we pay by wire transfer?", "Purchase order and invoicing"],
     body=[
        "Our finance department can't pay by card. Can we get an invoice and pay by bank transfer?",
        "We want to buy {seats} Team seats but need to pay via purchase order.",
        "Is invoicing available? Our policy doesn't allow company cards."],
     extra=[],
     res=[
        "Invoicing with bank transfer is available for Team plans with 10 or more users on annual billing, with 30-day payment terms. Reply with your company details and number of seats and our sales team will set it up. Smaller plans can pay by Visa, Mastercard, American Express or PayPal.",
        "Yes, for Team plans of 10+ users billed annually we can switch you to invoicing with 30-day terms. I've passed your request to sales, who'll be in touch within one business day."]),
    dict(area="billing", subj=[
        "Switching monthly to annual", "How is upgrading charged?", "Upgrade from Pro to Team pricing"],
     body=[
        "If I switch from monthly to yearly mid-month, do I pay twice?",
        "We want to upgrade from Pro to Team. How will billing work?",
        "How does proration work when upgrading?"],
     extra=[],
     res=[
        "Upgrades take effect immediately, and the unused part of your current period is credited against the new charge, pro-rated to the day. So you don't pay twice. Change plan under Settings → Plan & billing → Change plan.",
        "You won't be double-charged. When you upgrade, the remaining time on your current plan is credited pro rata and the new plan starts straight away."]),
    dict(area="billing", subj=[
        "Nonprofit discount", "Discount for schools?", "Education pricing"],
     body=[
        "We're a small charity. Do you have nonprofit pricing?",
        "Is there an education discount for Team? We're a school district.",
        "Do you offer discounts for registered nonprofits?"],
     extra=[],
     res=[
        "Yes, non-profits and education institutions get 50% off Team plans after verification. Reply with your registration documents or school details and we'll apply the discount. Note that discount codes can't be applied retroactively to an existing subscription, so it applies from your next billing period.",
        "We offer 50% off Team for verified non-profits and education. Send us proof of status and we'll set it up."]),
    dict(area="billing", subj=[
        "Removed users, will we get credit?", "Reduced Team seats", "Billing after removing members"],
     body=[
        "We removed {seats} people from our Team plan. Do we get anything back?",
        "Two employees left. If I remove their seats, what happens to billing?",
        "How are removed Team seats handled on annual billing?"],
     extra=[],
     res=[
        "Team seats removed mid-term are credited pro rata on your next invoice. Remember Team plans have a minimum of 3 users. Before removing someone, transfer any files or shared folders they own to another member.",
        "You'll receive a pro-rated credit for removed seats on your next invoice. The minimum for Team is 3 users."]),
    dict(area="billing", subj=[
        "Joining company Team, what about my Pro?", "Moving Pro account into Team",
        "Have Pro, my employer uses Team"],
     body=[
        "My company just got Aurora Team. I have a personal Pro subscription on the same email. What happens?",
        "Can I merge my Pro account into our Team plan?",
        "I paid for a year of Pro and now I'm being invited to our company Team."],
     extra=[],
     res=[
        "Your Team admin invites your email address, and when you accept, your files move into the Team account and the remaining Pro time is refunded pro rata to your original payment method. If you'd rather keep personal files separate, use a different email for the Team account.",
        "Accept the Team invitation and your account moves into the organisation. Unused Pro time is refunded pro rata automatically."]),
    dict(area="billing", subj=[
        "Apply discount code to current plan", "Promo code not accepted", "Forgot to enter coupon"],
     body=[
        "I forgot to enter a discount code when I upgraded. Can you apply it now?",
        "The promo code from the newsletter isn't accepted for my existing subscription.",
        "Got a coupon after I already paid. Can I use it?"],
     extra=[],
     res=[
        "Discount codes are entered at checkout and unfortunately can't be applied to an existing subscription retroactively. If you're within 14 days of an annual purchase, you could cancel for a full refund and repurchase with the code.",
        "Sorry, codes only work at checkout and can't be added to a running subscription. The one exception: on an annual plan bought less than 14 days ago you can cancel for a full refund and buy again with the code."]),
    # ---------------------------------------------------------------- api
    dict(area="api", subj=[
        "API returns 401 invalid_token", "401 from API with new token", "PAT not working"],
     body=[
        "Every call to /v2/account returns 401 with invalid_token. I just created the token.",
        "My script gets 401 Unauthorized from the API. I'm sending the token as ?access_token=...",
        "curl to api.aurorasync.example/v2 gives invalid_token, token starts with ast_."],
     extra=["Token has files:read scope."],
     res=[
        "Send the token in the Authorization header as `Authorization: Bearer ast_...`, since tokens in query strings aren't accepted. Also check that the whole token was copied (ast_ plus 40 characters) without a stray space or line break, and that it hasn't been revoked under Settings → Developer. If it still fails, include the request_id from the error response.",
        "invalid_token means the token is wrong, deleted or revoked. Make sure you're using the Bearer header, not a query parameter, and that no characters are missing. If in doubt, generate a new token; it's shown only once, so copy it straight away."]),
    dict(area="api", subj=[
        "token_expired error", "API stopped working overnight", "401 token_expired"],
     body=[
        "Our nightly backup script started failing with 401 token_expired.",
        "Integration worked for months and now returns token_expired.",
        "How do I renew an expired personal access token?"],
     extra=[],
     res=[
        "The token has passed its expiry date and can't be extended. Generate a new one under Settings → Developer → Personal access tokens with the same scopes, deploy it, then revoke the old one. If your Team admin set a maximum token lifetime, 'no expiry' isn't available.",
        "Expired tokens can't be renewed. Create a new token and update your script. To avoid surprises, note the expiry date and rotate a few days before: generate the new token, deploy it, revoke the old one."]),
    dict(area="api", subj=[
        "403 insufficient_scope on upload", "Can't upload via API", "403 when uploading files"],
     body=[
        "GET requests work but uploading with PUT /v2/files/content returns 403 insufficient_scope.",
        "My token can list files but deleting returns 403.",
        "API says insufficient_scope when I try to create a share link."],
     extra=[],
     res=[
        "The token doesn't have the scope that endpoint needs, and the error message names the missing one. Uploads, moves and deletes need `files:write`, and creating shares or links needs `sharing:write`. Scopes can't be added to an existing token, so generate a new one with the right scopes and revoke the old one.",
        "403 insufficient_scope means a missing scope: files:write for uploads/deletes, sharing:write for shares. Create a new token with the required scopes; give each token only what it needs."]),
    dict(area="api", subj=[
        "Getting 429 rate_limited", "API rate limit", "How many requests per minute?"],
     body=[
        "Our sync script hits 429 rate_limited after a minute or so.",
        "What are the API rate limits? We're on {plan}.",
        "Uploading a few thousand small files via API gets 429 errors."],
     extra=["We run several scripts with different tokens."],
     res=[
        "Limits are per account and shared by all its tokens: 60 requests/minute on Free, 600 on Pro and 1,200 per user on Team. When you get a 429, wait the number of seconds in the Retry-After header, and watch X-RateLimit-Remaining to pace requests. For large files, chunked upload sessions count one request per 8 MB chunk.",
        "All tokens of an account share the same limit (Free 60/min, Pro 600/min, Team 1,200/min per user), so several scripts add up. Honour the Retry-After header and back off; the X-RateLimit-* headers tell you how much is left."]),
    dict(area="api", subj=[
        "Lost my API token", "Can I see my token again?", "Where do I find my existing PAT?"],
     body=[
        "I created a personal access token last week but didn't save it. Where can I see it again?",
        "Can support send me my API token? I lost it.",
        "The developer page shows my token name but not the token itself."],
     extra=[],
     res=[
        "Tokens are shown only once, when they're created, and we don't store them in a readable form, so nobody can show it to you again. Delete the old token under Settings → Developer and generate a new one.",
        "For security, tokens are displayed only at creation. Revoke the lost one and generate a replacement with the same scopes."]),
    dict(area="api", subj=[
        "Token revoked automatically?", "Got email that my token was revoked",
        "Why was my ast_ token revoked?"],
     body=[
        "I received an email that my personal access token was revoked because it was found in a public repository.",
        "My token stopped working and I got an email about secret scanning.",
        "Oops, I pushed a config file with my token to GitHub. Now it's revoked."],
     extra=[],
     res=[
        "Nimbus Labs takes part in public secret-scanning programmes and automatically revokes ast_ tokens found in public repositories, which protects your account. Generate a new token, keep it in an environment variable or secrets manager rather than in code, and remove the old one from the repository history. Check your files' version history for any unexpected changes just in case.",
        "The token was revoked for your protection after it showed up in a public repository. Create a new one and store it outside your code. Also review Settings → Developer for when the old token was last used."]),
    dict(area="api", subj=[
        "Access vault files via API?", "API can't see Vault folder", "Vault and REST API"],
     body=[
        "Is there a scope that lets my script read files in the Vault?",
        "The API listing doesn't include my Vault folder.",
        "Can I back up vault contents via the API?"],
     extra=[],
     res=[
        "The vault can't be accessed through the API with any scope. That's by design: vault files are end-to-end encrypted with a key only you hold, so our servers can't serve them in readable form. Use a desktop client with the vault unlocked for automated access.",
        "No API scope covers the vault, because its contents are end-to-end encrypted and the server never has the key. Keep files your scripts need outside the vault."]),
    dict(area="api", subj=[
        "API v1 deprecation", "Is /v1 going away?", "Migrating from v1 to v2"],
     body=[
        "We still use the /v1 API. When will it stop working?",
        "Saw a notice about v1 deprecation. Do our tokens change?",
        "What do we need to change to move from /v1 to /v2?"],
     extra=[],
     res=[
        "Version 1 of the REST API will be switched off on 31 December 2026. Please move integrations to https://api.aurorasync.example/v2, which accepts the same personal access tokens, so only the endpoints need updating.",
        "/v1 shuts down on 31 December 2026. Your existing tokens work with /v2. See the developer portal for the endpoint mapping."]),
    dict(area="api", subj=[
        "Do tokens survive password change?", "Changed password, API still works?",
        "Security: revoke tokens after password reset"],
     body=[
        "I reset my password after a phishing scare. Are my API tokens still valid?",
        "Does changing my password invalidate personal access tokens?",
        "Changed my password but my scripts still work. Is that expected?"],
     extra=[],
     res=[
        "Yes, that's expected, because changing your password doesn't revoke existing tokens. If you think a token may have leaked, revoke it explicitly under Settings → Developer → Personal access tokens and generate a new one. The page also shows when each token was last used.",
        "Password changes don't affect personal access tokens. After a security incident, review the tokens under Settings → Developer, revoke any you don't recognise or that may be exposed, and create fresh ones."]),
    dict(area="api", subj=[
        "403 plan_required", "Can't set link password via API", "API plan_required error"],
     body=[
        "Creating a share link with a password through the API returns 403 plan_required.",
        "What does plan_required mean? I'm on Free.",
        "Link expiry via API gives plan_required."],
     extra=[],
     res=[
        "plan_required means the feature needs a Pro or Team plan. Share link passwords and expiry dates are Pro/Team features, in the API as in the web app. On Free you can create plain links without password or expiry.",
        "Password-protected and expiring links require Pro or Team, so the API returns 403 plan_required on Free. Upgrading makes the same request succeed."]),
    # ---------------------------------------------------------------- sharing
    dict(area="sharing", subj=[
        "Invitee didn't get share invite", "Shared folder invitation not received",
        "Colleague never got my invite"],
     body=[
        "I invited my client to {folder} three days ago but they say they never got the email.",
        "Share invitation isn't arriving for one of our external partners.",
        "How do I resend a shared folder invite?"],
     extra=["Their company has strict spam filters."],
     res=[
        "Ask them to check their spam or quarantine folder first. You can resend the invitation from the share dialog, or copy the invitation link there and send it yourself. Invitations expire after 14 days, so resend if it's older than that.",
        "Invites sometimes land in spam, especially with strict company filters. Open the share dialog to resend, or copy the invitation link and send it directly. Expired invites (after 14 days) need to be resent."]),
    dict(area="sharing", subj=[
        "'You can't edit this folder'", "Can't save changes in shared folder", "Read-only shared folder"],
     body=[
        "When I edit files in our shared {folder} folder the app says 'You can't edit this folder'.",
        "My changes to files in a shared folder don't upload.",
        "I was invited to a folder but can't add files to it."],
     extra=[],
     res=[
        "That message means your role in the shared folder is Viewer, which is read-only: local changes aren't uploaded. Ask the folder owner to change your role to Editor in the share dialog. Editors can add and change files and invite others.",
        "You're a Viewer on that folder, so your edits stay local. The owner can make you an Editor from the share dialog, and your next changes will then sync."]),
    dict(area="sharing", subj=[
        "Whose storage does a shared folder use?", "Shared folder eating my quota?",
        "Can't add files to shared folder, owner full"],
     body=[
        "If I join a colleague's 300 GB shared folder, does it use my storage?",
        "Nobody can add files to our shared folder anymore. It says the owner is out of space.",
        "Does a shared folder count against every member's quota?"],
     extra=[],
     res=[
        "A shared folder counts only towards the owner's storage quota, so members use none of theirs. If the owner runs out of space, nobody can add files until the owner frees space or upgrades. You may still need local disk space, and selective sync can skip parts of the folder.",
        "Only the owner's quota is used. If adding files fails with an out-of-space message, the owner needs to free space or upgrade. Joining a shared folder never uses your own quota."]),
    dict(area="sharing", subj=[
        "Can't add a 4th person to shared folder", "Member limit on Free", "Share limit reached"],
     body=[
        "I'm trying to share a folder with a fourth family member and it won't let me.",
        "Error: member limit reached when inviting someone.",
        "How many people can I share a folder with?"],
     extra=["I'm on the Free plan."],
     res=[
        "Free allows up to 3 members per shared folder, Pro up to 50, and Team unlimited members inside the organisation plus up to 100 external members per folder. Upgrading to Pro lifts the limit immediately.",
        "Shared folders on Free are limited to 3 members. With Pro you can have up to 50. Alternatively, a share link gives read-only access without a member slot."]),
    dict(area="sharing", subj=[
        "No password option for share link", "How to password protect a link", "Link expiry missing"],
     body=[
        "I want to send a link to {file} with a password but I don't see that option.",
        "Where do I set an expiry date on share links?",
        "Can I password protect a share link on the Free plan?"],
     extra=[],
     res=[
        "Passwords, expiry dates and disabling downloads are available on Pro and Team under Share → Link settings. Free accounts can create links, but without password or expiry. Links to files in the vault can't be created on any plan.",
        "Link passwords and expiry are Pro/Team features. After upgrading, open Share → Link settings on the link to set them."]),
    dict(area="sharing", subj=[
        "Revoke a share link", "Sent link to wrong person", "Disable link immediately"],
     body=[
        "I sent a link to {folder} to the wrong email address. How do I kill it?",
        "Need to disable a share link right now, it was posted publicly.",
        "How do I stop a link I created last month from working?"],
     extra=["It's urgent."],
     res=[
        "Open Share → Link settings → Delete link on that file or folder, and the old URL stops working immediately. If you still need to share it with the right person, create a new link, which gets a new URL. On Pro and Team you can see how many times a link was opened.",
        "Delete the link under Share → Link settings, which takes effect immediately. A new link will have a different URL, so the old one can't be reused."]),
    dict(area="sharing", subj=[
        "Transfer ownership of shared folder", "Owner leaving company", "Change owner of folder"],
     body=[
        "The owner of our main shared folder is leaving next week. How do we transfer it?",
        "I need to make my colleague the owner of {folder}.",
        "Can I hand over a shared folder to someone else?"],
     extra=["We're on the Team plan."],
     res=[
        "The current owner can open the share dialog, click ⋯ next to the member and choose Make owner. A shared folder always has exactly one owner. On Team plans, if the owner has already left and was suspended, an admin can transfer their files and folders to another member from the admin console.",
        "Ownership can be transferred by the owner from the share dialog (⋯ → Make owner). Do it before the person leaves if possible; otherwise a Team admin can reassign their files after suspending the account."]),
    dict(area="sharing", subj=[
        "Can't share with external client", "External sharing blocked",
        "Error sharing outside organisation"],
     body=[
        "When I try to invite a client to a folder it says external sharing isn't allowed.",
        "Share links only work for people in our company.",
        "Why can't I share with an outside email address?"],
     extra=[],
     res=[
        "Your Team administrator controls this under Policies → Sharing: external sharing can be allowed, limited to approved domains, or blocked, and share links can be restricted to the organisation. Please ask your admin to allow the client's domain or to enable external sharing.",
        "This is a Team policy setting. Your admin can add the client's domain to the approved list under Policies → Sharing. Existing external members aren't affected when the policy changes."]),
    dict(area="sharing", subj=[
        "Collect files from clients", "Let people upload without seeing folder", "File request"],
     body=[
        "I need clients to upload documents to me without seeing each other's files. Possible?",
        "Is there a way to collect homework from students into one folder?",
        "How do file requests work?"],
     extra=[],
     res=[
        "Use a file request: choose ⋯ → Request files on the folder, give it a title and a deadline, and send the link. People can upload without seeing the folder's contents, and uploads count towards your quota. File requests are available on Pro and Team.",
        "File requests (Pro and Team) do exactly that. Set one up with ⋯ → Request files, add a deadline, and share the link. Uploaders never see what's already in the folder."]),
    dict(area="sharing", subj=[
        "Colleague deleted files in shared folder", "Files missing from shared folder",
        "Someone emptied our shared folder"],
     body=[
        "Half the files in our shared {folder} folder are gone. I think a colleague deleted them.",
        "Someone in our team deleted a bunch of files from a shared folder yesterday.",
        "Files disappeared from a folder my client shares with me."],
     extra=[],
     res=[
        "Editors and the owner can restore them from Deleted files in the web app. Select the files and click Restore. If many files were deleted at once, the owner can use Rewind on the shared folder to return it to how it was before. Version history for shared folders follows the owner's plan.",
        "Deleted files in shared folders go to Deleted files, where an Editor or the owner can restore them. For mass deletions, Rewind (Pro/Team) on the folder is quickest."]),
    # ---------------------------------------------------------------- encryption
    dict(area="encryption", subj=[
        "Forgot vault passphrase", "Can't unlock my vault", "Vault passphrase reset"],
     body=[
        "I forgot my vault passphrase. I do have the recovery key printed out somewhere.",
        "Can't remember the vault password. How do I get in?",
        "Locked out of my vault after a long holiday, passphrase doesn't work."],
     extra=[],
     res=[
        "If you have the recovery key, you can get back in: open Preferences → Vault → Forgot passphrase → Use recovery key, enter the key and choose a new passphrase. A new recovery key is generated and the old one stops working, so store the new one safely.",
        "Use your recovery key under Preferences → Vault → Forgot passphrase. After entering it you'll set a new passphrase and receive a new recovery key. Keep it offline, for example printed or in a password manager."]),
    dict(area="encryption", subj=[
        "Lost vault passphrase AND recovery key", "Please recover my vault files",
        "Vault recovery without key"],
     body=[
        "I lost both my vault passphrase and the recovery key. Can support recover the files?",
        "Please unlock my vault, I can prove it's my account.",
        "There are important documents in my vault and I can't find the recovery key anywhere."],
     extra=["I'm happy to send ID."],
     res=[
        "We're sorry. Without the passphrase or the recovery key, vault files can't be decrypted by anyone, including Nimbus Labs support, which is the point of end-to-end encryption. We can reset the vault for you, which permanently deletes its contents so you can start over. On Team plans, an admin can help only if admin-assisted recovery was enabled before the key was lost.",
        "Vault contents are encrypted with a key derived from your passphrase, and we never have it, so identity checks can't help here. The only option is a vault reset, which deletes the vault files. Please check any password manager or printed notes for the recovery key first."]),
    dict(area="encryption", subj=[
        "Can't preview vault files on web", "Vault files no thumbnails", "Web app won't open vault files"],
     body=[
        "Files in my Vault have no previews on the website.",
        "Why can't I open files in the vault from the web app?",
        "Thumbnails don't show for photos in the vault."],
     extra=[],
     res=[
        "That's by design: the server can't read vault files, so it can't generate previews or thumbnails, and full-text search doesn't cover them. In the web app you can download vault files after unlocking the vault in the browser with your passphrase.",
        "Vault files are end-to-end encrypted, so previews, thumbnails and search aren't possible on the server. Unlock the vault in your browser to download them, or open them on a desktop where the vault is unlocked."]),
    dict(area="encryption", subj=[
        "Share link for vault file", "Can't share from vault", "Shared folder inside vault"],
     body=[
        "I can't create a share link for a file in my vault.",
        "How do I share a vault document with my accountant?",
        "Can I make a shared folder inside the Vault?"],
     extra=[],
     res=[
        "Share links and shared folders aren't possible inside the vault, because sharing would require the server to access the content. To share a file, move it out of the vault, which decrypts it and uploads it as a normal file, and then share it. Consider a password-protected link with an expiry date.",
        "Vault files can't be shared. Move the file out of the vault first (it becomes a normal, server-encrypted file) and create a link with a password and expiry (Pro/Team)."]),
    dict(area="encryption", subj=[
        "Vault keeps locking", "Vault locks every time laptop sleeps", "Change vault auto-lock"],
     body=[
        "My vault locks itself constantly and I have to type the passphrase over and over.",
        "Can I keep the vault unlocked longer?",
        "Every time I close the lid the vault locks."],
     extra=[],
     res=[
        "By default the vault locks after 30 minutes of inactivity and whenever the computer sleeps. Change this under Preferences → Vault → Auto-lock. On phones you can unlock with Face ID, Touch ID or fingerprint after entering the passphrase once.",
        "You can adjust the auto-lock timer under Preferences → Vault → Auto-lock. Locking on sleep is the default for safety."]),
    dict(area="encryption", subj=[
        "No vault option", "Where is the encryption vault?", "Vault not available"],
     body=[
        "I don't see the Vault anywhere in preferences.",
        "How do I enable end-to-end encryption?",
        "The vault setup button is missing."],
     extra=["I'm on the Free plan."],
     res=[
        "The encryption vault is available on Pro and Team plans. After upgrading, open Preferences → Vault → Set up vault, choose a passphrase of at least 12 characters and save your recovery key. All files are already encrypted in transit and at rest. The vault adds end-to-end encryption on top.",
        "The vault is a Pro and Team feature. Once you upgrade, set it up under Preferences → Vault or with `aurora vault init`."]),
    dict(area="encryption", subj=[
        "Old unencrypted versions after moving to vault", "Are previous versions encrypted?",
        "Moved files into vault, history still readable?"],
     body=[
        "I moved my tax documents into the vault. Are the older unencrypted versions still on your servers?",
        "After moving files into the vault, can someone still access the old versions?",
        "Does moving a file into the vault also encrypt its version history?"],
     extra=[],
     res=[
        "When you move files into the vault, the unencrypted originals are removed, but older unencrypted versions remain in version history until your plan's window ends. To remove them sooner, delete those versions permanently from Version history.",
        "Older versions from before the move stay in version history as normal files until they expire. Delete them permanently from Version history if you want them gone now."]),
    dict(area="encryption", subj=[
        "Admin access to employee vault", "Open vault of former employee",
        "Recover departed user's vault"],
     body=[
        "An employee left and we need documents from their vault. As admin, how do I open it?",
        "Can a Team admin unlock a member's vault?",
        "Former staff member's vault contains client files we need."],
     extra=["We're on Team."],
     res=[
        "Admins can't open a member's vault without that member's involvement, unless admin-assisted recovery was enabled (Policies → Security) before the key was lost, in which case the escrowed key allows recovery. It can't be applied retroactively. If it wasn't enabled, the person's passphrase or recovery key is the only way in.",
        "Without admin-assisted recovery enabled in advance, vault contents can only be opened with the member's passphrase or recovery key. We recommend enabling it now for current members."]),
    # ---------------------------------------------------------------- mobile
    dict(area="mobile", subj=[
        "Camera upload stops on iPhone", "Photos not uploading in background", "iOS camera upload unreliable"],
     body=[
        "Camera upload on my {phone} only works when I open the app.",
        "Photos from the last week didn't upload until I opened Aurora.",
        "Camera upload seems to stop randomly on iOS."],
     extra=["Low Power Mode is on most of the time."],
     res=[
        "iOS only allows background uploads for a limited time and pauses them in Low Power Mode or when an app hasn't been opened for a while. Opening the app resumes uploads. Also check that photo access is set to Full access; with Limited access only selected photos upload. Version 4.2 resumes more reliably after a restart.",
        "This is an iOS background limit. Opening the app once resumes camera upload. Make sure Aurora Sync has Full photo access and that Low Power Mode is off when you want uploads to run."]),
    dict(area="mobile", subj=[
        "Camera upload stops on Android", "Android uploads not running", "Camera upload stuck on Samsung"],
     body=[
        "Camera upload on my {phone} stops after a few minutes in the background.",
        "Photos upload only when the app is open on Android.",
        "Uploads stall overnight on my Android phone."],
     extra=[],
     res=[
        "Android battery optimisation often stops background uploads, especially on Samsung, Xiaomi and Huawei phones. Go to Settings → Apps → Aurora Sync → Battery and choose Unrestricted. Also check whether uploads are set to Wi-Fi only.",
        "Please exclude Aurora Sync from battery optimisation (Settings → Apps → Aurora Sync → Battery → Unrestricted). Camera upload then runs reliably in the background."]),
    dict(area="mobile", subj=[
        "Photos uploaded as HEIC", "Can't open iPhone photos on Windows", "Convert to JPG"],
     body=[
        "My iPhone photos are uploaded as HEIC and my Windows PC can't open them.",
        "Can Aurora convert photos to JPG when uploading?",
        "Family members can't view my HEIC photos."],
     extra=[],
     res=[
        "HEIC photos are uploaded in their original format by default. Turn on Settings → Camera upload → Save HEIC photos as JPG in the app, and new photos will be saved as JPG.",
        "Enable Save HEIC photos as JPG in the mobile app's camera upload settings. Photos uploaded after that are saved as JPG."]),
    dict(area="mobile", subj=[
        "Offline files re-download every time", "Android keeps downloading offline files",
        "Offline folder uses lots of data"],
     body=[
        "Every time I open the app on Android, my offline files download again.",
        "The offline folder re-downloads on app start and eats my mobile data.",
        "Offline files keep syncing even though nothing changed."],
     extra=["App version {ver}."],
     res=[
        "This was a bug in Android versions before 4.2 and is fixed in 4.2. Please update the app from Google Play. Until then, you can limit downloads to Wi-Fi in settings.",
        "Thanks for reporting. The Android 4.2 update fixes offline files being re-downloaded on every start. Please update from Google Play."]),
    dict(area="mobile", subj=[
        "Vault on Android?", "Can't open vault on phone", "Vault missing in mobile app"],
     body=[
        "I can't open my Vault folder in the Android app.",
        "Is the vault available on mobile?",
        "Vault folder shows locked on my {phone} and there's no unlock button."],
     extra=[],
     res=[
        "The vault works on iOS since 4.1 and on Android since 4.2 (Android 10 or later). Update the app, tap the Vault folder and enter your passphrase once, and after that you can unlock with fingerprint or Face ID. Note that vault files can't be made available offline on mobile.",
        "Please update to app version 4.2, which adds the vault on Android. Enter your passphrase once, then use fingerprint unlock."]),
    dict(area="mobile", subj=[
        "Lost my phone", "Phone stolen, remove access", "Remote wipe Aurora on phone"],
     body=[
        "My phone was stolen yesterday. It has the Aurora app signed in.",
        "How do I remove Aurora from a lost phone?",
        "Lost my {phone} on the bus, worried about my files."],
     extra=[],
     res=[
        "Unlink the phone right away in the web app under Settings → Devices. The next time the phone connects, the app signs out and removes downloaded and offline files. It's also a good idea to change your password and check that two-step verification is on.",
        "Go to Settings → Devices in the web app and unlink the phone. When it next connects, the app signs out and deletes its local and offline files."]),
    dict(area="mobile", subj=[
        "Device limit reached on phone", "Can't sign in on new phone", "Too many devices"],
     body=[
        "Trying to sign in on my new phone and it says 'Device limit reached'.",
        "I got a new {phone} and the app won't let me log in.",
        "The app says I have too many devices but I only use two."],
     extra=[],
     res=[
        "Free accounts can link three devices, and phones count too. Unlink old devices in the web app under Settings → Devices, then sign in again. Pro and Team have unlimited devices.",
        "Old devices still count until they're unlinked. Remove them under Settings → Devices in the web app and try again, or upgrade to Pro for unlimited devices."]),
    dict(area="mobile", subj=[
        "Deleted photos from phone, gone from Aurora?", "Free up phone space safely",
        "Will deleting photos delete backups?"],
     body=[
        "If I delete photos from my phone to free space, are they deleted from Aurora too?",
        "I cleared my camera roll. Are the uploaded photos still in Aurora?",
        "Want to delete photos on my phone but keep the backup."],
     extra=[],
     res=[
        "No. Deleting a photo from your phone doesn't delete it from Aurora Sync. Once camera upload has finished (check the Camera Uploads folder), you can safely remove photos from the phone.",
        "Your uploaded photos stay in the Camera Uploads folder even if you delete them on the phone. Just make sure uploads have completed first."]),
    # ---------------------------------------------------------------- sso
    dict(area="sso", subj=[
        "SAML response signature invalid", "SSO broken after certificate rotation", "SSO login error"],
     body=[
        "Since this morning all SSO logins fail with 'SAML response signature invalid'.",
        "Our {idp} admin rotated the signing certificate and now nobody can log in.",
        "Users get a signature error when signing in through {idp}."],
     extra=["About {seats} users affected."],
     res=[
        "This happens when the IdP's signing certificate changes. In the admin console go to Security → Single sign-on and re-import your IdP's metadata (URL or XML), and the new certificate is then trusted. Administrators listed as password exceptions can still sign in meanwhile.",
        "Please re-import the {idp} metadata under Security → Single sign-on. Aurora Sync reads the new signing certificate from it and logins work again immediately."]),
    dict(area="sso", subj=[
        "'User not in organisation' error", "New hire can't log in with SSO", "SSO user not found"],
     body=[
        "A new employee gets 'User not in organisation' when signing in with SSO.",
        "Some users can log in through {idp}, others get an error about the organisation.",
        "SSO works for me but not for a colleague with a different email domain."],
     extra=[],
     res=[
        "That error means the email address from the IdP doesn't match a verified domain, or the user hasn't been invited and just-in-time provisioning is off. Check the domain under Settings → Domains, invite the user or enable provisioning, or set up SCIM so your IdP creates accounts automatically.",
        "Make sure the user's email domain is verified in the admin console and that the user was invited or provisioned via SCIM. Users on a second domain need that domain verified too."]),
    dict(area="sso", subj=[
        "Domain verification pending", "TXT record not verifying", "Can't verify domain"],
     body=[
        "I added the aurora-verification TXT record yesterday but the domain still shows pending.",
        "Domain verification isn't completing.",
        "How long does domain verification take?"],
     extra=[],
     res=[
        "Verification usually completes within an hour but can take up to 48 hours, depending on DNS caching. Check that the TXT record is on the root domain and contains exactly the value shown, like aurora-verification=..., without extra quotes or spaces.",
        "Please double-check the TXT value matches the admin console exactly and is published on the domain itself, not a subdomain. DNS changes can take up to 48 hours to be visible."]),
    dict(area="sso", subj=[
        "SSO sign-in loops back to login page", "Login loop with SAML", "Redirect loop after SSO"],
     body=[
        "After authenticating with our on-prem {idp}, users are sent back to the login page again and again.",
        "SSO login loops. The IdP says success but Aurora shows the login screen.",
        "Endless redirect between Aurora and our IdP."],
     extra=[],
     res=[
        "Assertions are only accepted within five minutes of their timestamp. A login loop almost always means the clock on an on-premises IdP server is off, so please sync it with NTP. If the clock is fine, send us the time of a failed attempt and we'll check the logs.",
        "Check the system time on your IdP server. Assertions more than five minutes off are rejected, which causes exactly this loop."]),
    dict(area="sso", subj=[
        "SSO on Pro plan?", "Can I use Okta with Pro?", "Single sign-on availability"],
     body=[
        "We're 2 people on Pro accounts. Can we use SSO?",
        "Is SAML SSO available for Pro?",
        "Which plan includes single sign-on?"],
     extra=[],
     res=[
        "SSO (SAML 2.0 and OIDC) and SCIM provisioning are part of the Team plan. Team has a minimum of 3 users and also includes the admin console and audit log.",
        "Single sign-on is only available on Team (minimum 3 users). Pro accounts sign in with a password plus optional two-step verification."]),
    dict(area="sso", subj=[
        "Deprovisioned user still has access?", "SCIM deactivation", "Offboarding with SCIM"],
     body=[
        "We deactivated a user in {idp}. How quickly does Aurora lock them out?",
        "Does SCIM deprovisioning delete the user's files?",
        "An ex-employee was removed in our IdP. Are they removed from Aurora?"],
     extra=[],
     res=[
        "With SCIM set up, deactivating a user in the IdP suspends them in Aurora Sync within minutes. Their files stay in the organisation and an admin can transfer them to another member. Without SCIM, suspend the user manually in the admin console.",
        "SCIM deactivation suspends the account within minutes. Files aren't deleted, so transfer them to a colleague from the admin console."]),
    dict(area="sso", subj=[
        "Users still logged in after enforcing SSO", "Enforced SSO, what about existing sessions?",
        "API tokens after SSO"],
     body=[
        "We set SSO to Required but people are still signed in on their desktops.",
        "After enforcing SSO, will personal access tokens stop working?",
        "Do users need to sign in again when we turn on required SSO?"],
     extra=[],
     res=[
        "Existing desktop and mobile sessions stay signed in until they expire (14 days by default) and then ask for SSO. Personal access tokens keep working, but you can require them to be re-approved every 90 days.",
        "That's expected. Sessions expire on their normal schedule (14 days) and then require SSO. PATs continue to work unless revoked; see Admin console → Security → API tokens."]),
    dict(area="sso", subj=[
        "Locked out after SSO misconfiguration", "Nobody can log in after enabling SSO",
        "Admin locked out of admin console"],
     body=[
        "I enforced SSO and made a mistake in the config. Now I can't log in to fix it.",
        "All admins are locked out after we switched SSO to Required.",
        "SSO is broken and I can't reach the admin console."],
     extra=[],
     res=[
        "Admins listed as SSO exceptions can still sign in with their password. That's why we recommend keeping one break-glass admin. If none exists, reply from the organisation owner's email address and we'll verify ownership through your billing records and temporarily switch SSO to Optional. We'll never ask for ID numbers or card details.",
        "Please try signing in with the password of an admin listed under SSO exceptions. If there is none, contact us from the Team owner's email; after verification we can set SSO mode back to Optional so you can fix the configuration."]),
    # ---------------------------------------------------------------- account
    dict(area="account", subj=[
        "Confirmation link expired", "Didn't confirm email in time", "Activation email link not working"],
     body=[
        "The link in my confirmation email says it's expired.",
        "I signed up last week but never clicked the confirm link, now it doesn't work.",
        "Can you resend the account confirmation?"],
     extra=[],
     res=[
        "Confirmation links are valid for 48 hours. Sign in at app.aurorasync.example and click Resend confirmation email to get a fresh link. Check your spam folder if it doesn't arrive within a few minutes.",
        "The link expired after 48 hours. Signing in and choosing Resend confirmation email sends a new one."]),
    dict(area="account", subj=[
        "Lost phone with authenticator", "Can't log in, 2FA codes gone", "Two-step verification locked out"],
     body=[
        "My phone with the authenticator app broke and I can't log in.",
        "I lost access to two-step verification. How do I get into my account?",
        "New phone, old authenticator codes gone."],
     extra=[],
     res=[
        "If you saved the backup codes shown when you turned on two-step verification, use one of them on the sign-in page and then set up the authenticator again under Settings → Security. If you have a hardware key registered, that works too. Otherwise reply from your account email and we'll start account recovery, which takes a few days; we'll never ask for ID numbers or card details.",
        "Use a backup code or a registered hardware key if you have one. If not, we can start account recovery from your account email address. For security this includes a waiting period."]),
    dict(area="account", subj=[
        "Change account email", "Update login email address", "New email after company rename"],
     body=[
        "Our company changed its domain. How do I change my Aurora login email?",
        "I want to switch my account email from my old address.",
        "Can you update my account email?"],
     extra=[],
     res=[
        "Go to Settings → Account → Email and enter the new address. We send a confirmation link to it, and the change takes effect once you click it. On Team plans with SSO, email changes come from your identity provider instead.",
        "You can change it yourself under Settings → Account → Email; confirm via the link sent to the new address. SSO users should ask their admin, as the IdP controls the email."]),
    dict(area="account", subj=[
        "Delete my account", "Close account and remove data", "GDPR deletion request"],
     body=[
        "Please delete my account and all my data.",
        "How do I close my Aurora Sync account?",
        "I'd like to permanently delete my account under GDPR."],
     extra=[],
     res=[
        "You can delete your account under Settings → Account → Delete account. Download anything you want to keep first, because deletion removes all files, versions and the vault permanently after a 30-day grace period. If you have a paid plan, cancel it first; annual plans cancelled within 14 days of purchase or renewal are refunded.",
        "Deletion is available under Settings → Account → Delete account and becomes permanent after 30 days. Please download your files first. We've also noted your request, and you'll get a confirmation email when it's complete."]),
]

# --------------------------------------------------------------------------------------
# Generic fragments
# --------------------------------------------------------------------------------------

GREETINGS = ["Hi,", "Hello,", "Hi there,", "Hello support,", "Hi Aurora team,", "Good morning,",
             "Dear Nimbus Labs support,", "Hey,", "Hi team,", "Hello Aurora Sync support,"]
TONE_OPENERS = {
    "angry": ["This is really frustrating.", "Third time I'm writing about this!!",
              "Honestly, this is unacceptable for a paid product.", "I'm losing my patience here."],
    "urgent": ["This is urgent.", "We have a deadline tomorrow.", "Need help ASAP please.",
               "Our whole office is blocked by this."],
    "polite": ["Hope you're well.", "Sorry to bother you.", "Quick question for you.",
               "I hope this is the right place to ask."],
}
# extras that fit any message, and extras that only fit when something is broken
GENERIC_EXTRAS = ["I couldn't find anything in the help centre.",
                  "I read the docs but I'm still not sure.", "Hopefully this is an easy one."]
FAULT_EXTRAS = [
    "This started after the last update.", "I already tried restarting.",
    "I've been a customer for years and never had this.", "Not sure if this is a bug or me.",
    "Screenshots attached.", "It happens on my work computer but not at home.",
]
FAULT_WORDS = re.compile(
    r"error|E-[A-Z]+-\d+|stuck|fail|won't|doesn't|don't|never|not (?:working|uploading)|slow|"
    r"stop|missing|broken|crash|loop|keeps|can't|frozen|isn't", re.IGNORECASE)
CLOSINGS = ["Thanks!", "Any help appreciated.", "Please advise.", "Thanks in advance.",
            "Thank you.", "Let me know what you need from me.",
            "Appreciate a quick reply."]
RES_PREFIX = ["Thanks for getting in touch.", "Sorry for the trouble!", "Thanks for the report.",
              "Happy to help with this."]
RES_SUFFIX = ["Let us know if that doesn't solve it.", "Just reply here if you need anything else.",
              "Hope that helps!", "We're here if you have more questions."]
FILLERS = ["Um, ", "Uh, ", "So, like, you know, ", "Um so basically ", "Uh yeah, so ", "So um, "]
TYPOS = {
    "the": "teh", "receive": "recieve", "because": "becuase", "separate": "seperate",
    "doesn't": "doesnt", "can't": "cant", "I'm": "im", "sync": "snyc", "anything": "anythign",
    "please": "pls", "folder": "foldr", "there": "their", "again": "agian", "really": "realy",
    "files": "fiels", "account": "acount", "which": "wich", "don't": "dont", "it's": "its",
}
NEAR_DUP_WORDS = {
    "laptop": "notebook", "files": "documents", "yesterday": "today", "Hi,": "Hello,",
    "Thanks!": "Thank you!", "computer": "PC", "really": "very", "folder": "directory",
    "app": "client", "week": "month", "morning": "afternoon",
}
NEAR_DUP_ADDED = ["Any update on this?", "Following up on my earlier message.",
                  "Please let me know.", "Thanks again.", "Sending this again in case it got lost.",
                  "Would appreciate an answer."]

# --------------------------------------------------------------------------------------
# Generation helpers
# --------------------------------------------------------------------------------------


def dedup_key(*parts: str) -> str:
    """Same comparison the pipeline's exact dedup uses: case-folded, whitespace-collapsed."""
    return "\x00".join(re.sub(r"\s+", " ", p).strip().casefold() for p in parts)


class Gen:
    def __init__(self, rng: Random):
        self.rng = rng

    # -- people -----------------------------------------------------------------------
    def person(self) -> dict:
        r = self.rng
        first, last = r.choice(FIRST_NAMES), r.choice(LAST_NAMES)
        company, cdomain = r.choice(COMPANIES)
        work = r.random() < 0.55
        domain = cdomain if work else r.choice(PERSONAL_DOMAINS)
        ascii_first = first.replace("á", "a").replace("ë", "e").replace("é", "e")
        ascii_last = (last.replace("'", "").replace("á", "a").replace("é", "e").lower())
        style = r.randrange(4)
        if style == 0:
            local = f"{ascii_first.lower()}.{ascii_last}"
        elif style == 1:
            local = f"{ascii_first[0].lower()}{ascii_last}"
        elif style == 2:
            local = f"{ascii_first.lower()}{r.randrange(10, 99)}"
        else:
            local = f"{ascii_first.lower()}_{ascii_last}"
        return dict(name=f"{first} {last}", first=first, email=f"{local}@{domain}",
                    company=company, work=work, title=r.choice(JOB_TITLES))

    def phone_us(self) -> str:
        r = self.rng
        area = r.choice(["415", "212", "312", "503", "617", "737", "206"])
        line = f"01{r.randrange(0, 100):02d}"
        return r.choice([f"+1 {area} 555 {line}", f"({area}) 555-{line}", f"{area}-555-{line}",
                         f"{area}.555.{line}"])

    def phone_intl(self) -> str:
        r = self.rng
        return r.choice([
            f"+44 20 7946 0{r.randrange(100, 999)}", f"+49 30 5550 {r.randrange(1000, 9999)}",
            f"+61 2 5550 {r.randrange(1000, 9999)}", f"+33 1 99 00 {r.randrange(10, 99)} {r.randrange(10, 99)}",
            f"+353 1 555 0{r.randrange(100, 999)}", f"+31 20 555 {r.randrange(1000, 9999)}",
        ])

    def ip(self) -> str:
        r = self.rng
        return r.choice([f"203.0.113.{r.randrange(2, 254)}", f"198.51.100.{r.randrange(2, 254)}",
                         f"192.0.2.{r.randrange(2, 254)}", f"192.168.1.{r.randrange(2, 254)}",
                         f"10.20.{r.randrange(0, 50)}.{r.randrange(2, 254)}"])

    def ssn(self) -> str:
        r = self.rng
        if r.random() < 0.3:
            return "123-45-6789"
        return f"9{r.randrange(0, 100):02d}-{r.randrange(10, 99)}-{r.randrange(1000, 9999)}"

    def address(self) -> str:
        r = self.rng
        return f"{r.randrange(3, 2400)} {r.choice(STREETS)}, {r.choice(CITIES)}"

    def other_name(self) -> str:
        return f"{self.rng.choice(FIRST_NAMES)} {self.rng.choice(LAST_NAMES)}"

    # -- personal data sentences --------------------------------------------------------
    def pii_sentence(self, area: str, cust: dict) -> str:
        r = self.rng
        colleague = self.person()
        kinds = ["email", "phone_us", "phone_intl", "ip", "name", "address", "ssn", "card", "iban"]
        weights = [14, 12, 8, 10, 14, 8, 6, 8, 6]
        if area == "billing":
            weights = [8, 8, 6, 2, 8, 12, 6, 20, 16]
        elif area in ("network", "sync", "api", "install"):
            weights = [10, 10, 6, 22, 10, 4, 5, 5, 3]
        kind = r.choices(kinds, weights)[0]
        if kind == "email":
            return r.choice([
                f"You can also reach me at {colleague['email']}.",
                f"Please cc my colleague {colleague['name']} at {colleague['email']}.",
                f"My login is {cust['email']} but please reply to {colleague['email']}.",
                f"The invite went to {colleague['email']} if that helps.",
            ])
        if kind == "phone_us":
            return r.choice([f"Call me at {self.phone_us()} if that's easier.",
                             f"My direct line is {self.phone_us()}.",
                             f"You can text me on {self.phone_us()}."])
        if kind == "phone_intl":
            return r.choice([f"Best number to reach me: {self.phone_intl()}.",
                             f"I'm travelling this week, my mobile is {self.phone_intl()}.",
                             f"Please call our office on {self.phone_intl()}."])
        if kind == "ip":
            public = self.ip()
            while public.startswith(("192.168.", "10.")):
                public = self.ip()
            return r.choice([f"Our public IP is {public} if you want to check your logs.",
                             f"The machine has the address {self.ip()} on our network.",
                             f"Traffic goes out through our gateway at {self.ip()}.",
                             f"The server in question is {self.ip()}."])
        if kind == "name":
            other = self.other_name()
            return r.choice([f"My colleague {other} has the same problem.",
                             f"{other} from our finance team asked me to follow up on this.",
                             f"I'm writing on behalf of my manager, {other}.",
                             f"{other} set this up originally but has left the company."])
        billing = area == "billing"
        if kind == "address":
            if billing:
                return r.choice([f"Our billing address is {self.address()}.",
                                 f"Please update the address on the account to {self.address()}.",
                                 f"For the invoice: {cust['company']}, {self.address()}."])
            return r.choice([f"Our office is at {self.address()}, in case that matters.",
                             f"I work from home at {self.address()}, same problem there.",
                             f"The account is registered to {self.address()}."])
        if kind == "ssn":
            return r.choice([f"To verify it's me, my SSN is {self.ssn()}.",
                             f"Not sure what you need for verification, my social is {self.ssn()}.",
                             f"If you need ID, my social security number is {self.ssn()}."])
        if kind == "card":
            card = r.choice(TEST_CARDS)
            if billing:
                return r.choice([f"The card that was charged is {card}.",
                                 f"Card number {card}, exp 09/28, in case you need it.",
                                 f"Please put the new card on the account: {card}.",
                                 f"I paid with {card} if you need to look it up."])
            return r.choice([f"If you need to verify the account, the card on file is {card}.",
                             f"We pay with the company card {card}, so it's a paid account.",
                             f"To prove it's my account: I pay with {card}."])
        iban = r.choice(EXAMPLE_IBANS)
        if billing:
            return r.choice([f"Please send the refund to IBAN {iban}.",
                             f"Our bank details: IBAN {iban}.",
                             f"You can transfer the money back to {iban}."])
        return r.choice([f"We pay by bank transfer from {iban}, if that helps find our account.",
                         f"Our account is paid from IBAN {iban}, in case you need to verify us."])

    def signature(self, cust: dict, channel: str) -> str:
        r = self.rng
        style = r.randrange(5)
        if style == 0:
            return f"Thanks,\n{cust['name']}\nSent from my iPhone"
        if style == 1:
            phone = self.phone_us() if r.random() < 0.6 else self.phone_intl()
            return f"--\n{cust['name']} | {cust['title']} | {cust['company']} | {phone}"
        if style == 2:
            return f"Best regards,\n{cust['name']}\n{cust['company']}"
        if style == 3:
            return f"Cheers,\n{cust['first']}"
        return f"Kind regards,\n{cust['name']}\n{cust['title']}, {cust['company']}\nM: {self.phone_intl()}"

    # -- text mutation ------------------------------------------------------------------
    def typo(self, text: str) -> str:
        words = text.split(" ")
        idx = [i for i, w in enumerate(words) if w.strip(".,!?") in TYPOS]
        if not idx:
            return text
        for i in self.rng.sample(idx, min(len(idx), self.rng.randint(1, 2))):
            core = words[i].strip(".,!?")
            words[i] = words[i].replace(core, TYPOS[core], 1)
        return " ".join(words)

    def context(self, cust: dict) -> dict:
        r = self.rng
        device = r.choice(DEVICE_NAMES).format(UP=cust["first"].upper()[:8])
        file = r.choice(FILES)
        folder = r.choice(FOLDERS)
        return dict(
            os=r.choice(DESKTOP_OS), linux=r.choice(LINUX_OS), ver=r.choice(VERSIONS),
            macos=r.choice([o for o in DESKTOP_OS if o.startswith("macOS")]),
            device=device, file=file, stem=file.rsplit(".", 1)[0], folder=folder,
            folder_leaf=folder.split("/")[-1], n=r.choice([3, 7, 12, 48, 112, 356, 1204]),
            gb=r.choice([18, 40, 75, 120, 260, 480]), phone=r.choice(PHONES), idp=r.choice(IDPS),
            plan=r.choice(["Free", "Pro", "Team"]), seats=r.choice([3, 5, 8, 12, 25, 40]),
            company=cust["company"],
        )

    # -- one ticket ---------------------------------------------------------------------
    def ticket(self, when: dt.datetime) -> tuple[dict, dict]:
        r = self.rng
        weights = [1.4 if p["area"] == "sync" else 1.0 for p in P]
        problem = r.choices(P, weights)[0]
        cust = self.person()
        ctx = self.context(cust)
        channel = r.choices(["email", "chat", "web"], [45, 30, 25])[0]
        flags = {"pii": False}

        subject = r.choice(problem["subj"]).format(**ctx)
        if r.random() < 0.06:
            subject = subject.lower()
        if channel == "email" and r.random() < 0.08:
            subject = "Re: " + subject
        if r.random() < 0.05:
            subject = "URGENT - " + subject

        sentences: list[str] = []
        core = r.choice(problem["body"]).format(**ctx)
        if FAULT_WORDS.search(core):
            tone = r.choices(["none", "angry", "urgent", "polite"], [56, 15, 15, 14])[0]
        else:
            tone = r.choices(["none", "polite"], [80, 20])[0]
        if tone != "none":
            sentences.append(r.choice(TONE_OPENERS[tone]))
        sentences.append(core)
        if r.random() < 0.45:
            pool = problem["extra"] * 2 + GENERIC_EXTRAS
            if FAULT_WORDS.search(core):
                pool += FAULT_EXTRAS
            sentences.append(r.choice(pool).format(**ctx))
        if r.random() < 0.16:
            sentences.append(self.pii_sentence(problem["area"], cust))
            flags["pii"] = True
        if r.random() < 0.4 and channel != "chat":
            sentences.append(r.choice(CLOSINGS))
        while len(sentences) > 6:
            sentences.pop(1)
        text = " ".join(sentences)
        if r.random() < 0.14:
            text = self.typo(text)
        if channel == "chat":
            if r.random() < 0.3:
                text = text[0].lower() + text[1:]
            body = text
        else:
            parts = []
            if r.random() < 0.55:
                parts.append(r.choice(GREETINGS))
            parts.append(text)
            sig_p = 0.35 if channel == "email" else 0.15
            if r.random() < sig_p:
                parts.append(self.signature(cust, channel))
                flags["pii"] = True
            sep = "\n\n" if channel == "email" else "\n"
            body = sep.join(parts)

        res = r.choice(problem["res"]).format(**ctx)
        if r.random() < 0.25 and not res.startswith(("Thanks", "Sorry", "I'm sorry", "We're sorry",
                                                         "Good news")):
            res = r.choice(RES_PREFIX) + " " + res
        if r.random() < 0.25:
            res = res + " " + r.choice(RES_SUFFIX)

        ticket = dict(
            ticket_id="", created_at=when.strftime("%Y-%m-%dT%H:%M:%SZ"), channel=channel,
            product_area=problem["area"], subject=subject, body=body, resolution=res,
            customer_name=cust["name"], customer_email=cust["email"],
        )
        return ticket, flags

    # -- noise ----------------------------------------------------------------------------
    def add_html(self, body: str) -> str:
        r = self.rng
        style = r.randrange(3)
        if style == 0:
            out = body.replace("\n", "<br>")
        elif style == 1:
            out = body.replace(". ", ".&nbsp; ", 2).replace("\n\n", "<br><br>\n")
        else:
            out = "<p>" + body.replace("\n\n", "</p><p>").replace("\n", "<br/>") + "</p>&nbsp;"
        return out if "<" in out else out + "<br>"

    def add_filler(self, body: str) -> str:
        r = self.rng
        paragraphs = body.split("\n")
        p = max(range(len(paragraphs)), key=lambda k: len(paragraphs[k]))  # the message itself
        sentences = re.split(r"(?<=[.!?]) ", paragraphs[p], maxsplit=3)
        i = r.randrange(len(sentences))
        s = sentences[i]
        if s and s[0].isalpha():
            keep_case = s.startswith(("I ", "I'")) or s.split(" ")[0].isupper()
            s = r.choice(FILLERS) + (s if keep_case else s[0].lower() + s[1:])
        sentences[i] = s
        out = " ".join(sentences)
        if r.random() < 0.5:
            out = out.replace(" and ", " and, uh, ", 1)
        if r.random() < 0.4:
            out = out.replace(". ", ", you know. ", 1)
        paragraphs[p] = out
        return "\n".join(paragraphs)

    def add_quoted_reply(self, body: str, when: dt.datetime, first: str) -> str:
        r = self.rng
        before = when - dt.timedelta(days=r.randint(1, 6), hours=r.randint(0, 8))
        hour12 = before.hour % 12 or 12
        ampm = "AM" if before.hour < 12 else "PM"
        header = (f"On {WEEKDAYS[before.weekday()]}, {MONTHS[before.month - 1]} {before.day}, "
                  f"{before.year} at {hour12}:{before.minute:02d} {ampm}, Aurora Support "
                  f"<support@aurorasync.example> wrote:")
        quoted = r.choice([
            [f"Hi {first},", "Thanks for reaching out. Could you tell us which version of Aurora Sync you are using",
             "and send a diagnostics bundle (aurora diag --bundle)?", "", "Best,", "Aurora Sync Support"],
            [f"Hello {first},", "We have marked this ticket as solved. If the problem comes back,",
             "simply reply to this email.", "", "Kind regards,", "The Aurora Sync team"],
            [f"Hi {first},", "Sorry to hear that. Can you confirm which plan you are on and whether",
             "this happens on all of your devices?", "", "Thanks,", "Support"],
        ])
        return body + "\n\n" + header + "\n" + "\n".join(("> " + q) if q else ">" for q in quoted)

    def near_dup(self, body: str) -> str:
        """A small edit to the message paragraph: one word swapped, a sentence added or dropped."""
        r = self.rng
        paragraphs = body.split("\n")
        p = max(range(len(paragraphs)), key=lambda k: len(paragraphs[k]))
        main = paragraphs[p]
        for _ in range(20):
            op = r.choice(["swap", "swap", "add", "add", "drop"])
            if op == "swap":
                candidates = [w for w in NEAR_DUP_WORDS
                              if re.search(rf"(?<!\w){re.escape(w)}(?!\w)", main)]
                if not candidates:
                    continue
                w = r.choice(candidates)
                new = re.sub(rf"(?<!\w){re.escape(w)}(?!\w)", NEAR_DUP_WORDS[w], main, count=1)
            elif op == "add":
                new = main + " " + r.choice(NEAR_DUP_ADDED)
            else:  # drop the last sentence (an extra, a closing or a contact detail)
                sentences = re.split(r"(?<=[.!?]) ", main)
                if len(sentences) < 3:
                    continue
                new = " ".join(sentences[:-1])
            if dedup_key(new) != dedup_key(main):
                paragraphs[p] = new
                return "\n".join(paragraphs)
        paragraphs[p] = main + " Any update?"
        return "\n".join(paragraphs)

    def space_case_variant(self, t: dict) -> dict:
        r = self.rng
        out = dict(t)
        ops = r.sample(["double", "newlines", "trailing", "lower_subj", "upper_subj", "lower_body",
                        "indent"], 2)
        for op in ops:
            if op == "double":
                out["body"] = out["body"].replace(". ", ".  ").replace(", ", ",   ")
            elif op == "newlines":
                out["body"] = out["body"].replace("\n\n", "\n \n\n")
                out["body"] = out["body"].replace(". ", ".\n", 1)
            elif op == "trailing":
                out["body"] = "  " + out["body"] + "  \n"
                out["subject"] = out["subject"] + " "
            elif op == "lower_subj":
                out["subject"] = out["subject"].lower()
            elif op == "upper_subj":
                out["subject"] = out["subject"].upper()
            elif op == "lower_body":
                out["body"] = out["body"].lower()
            elif op == "indent":
                out["body"] = "\n".join("  " + line for line in out["body"].split("\n"))
        if (out["subject"], out["body"]) == (t["subject"], t["body"]):
            out["body"] = out["body"] + "   "
        assert dedup_key(out["subject"], out["body"], out["resolution"]) == dedup_key(
            t["subject"], t["body"], t["resolution"])
        return out


def random_time(rng: Random, start: dt.datetime, end: dt.datetime) -> dt.datetime:
    span = int((end - start).total_seconds())
    t = start + dt.timedelta(seconds=rng.randrange(span))
    if rng.random() < 0.8:  # mostly office hours, UTC
        t = t.replace(hour=rng.randint(7, 19))
    return t


def key_of(t: dict) -> str:
    return dedup_key(t["subject"], t["body"], t["resolution"])


def main() -> None:
    rng = Random(SEED)
    gen = Gen(rng)
    start, end = dt.datetime(2026, 1, 5), dt.datetime(2026, 10, 31)

    # base tickets, every one unique even after case/whitespace folding
    seen: set[str] = set()
    base: list[tuple[dict, dict]] = []
    while len(base) < N_BASE:
        t, flags = gen.ticket(random_time(rng, start, end))
        if key_of(t) in seen:
            continue
        seen.add(key_of(t))
        base.append((t, flags))
    base.sort(key=lambda tf: tf[0]["created_at"])

    # noise on disjoint sets of base tickets (bodies that are not chat one-liners for HTML/quotes)
    idx = list(range(len(base)))
    rng.shuffle(idx)
    not_chat = [i for i in idx if base[i][0]["channel"] != "chat"]
    html_ids = set(not_chat[:N_HTML_NOISE])
    quote_ids = set(i for i in not_chat[N_HTML_NOISE:] if base[i][0]["channel"] == "email")
    quote_ids = set(sorted(quote_ids, key=not_chat.index)[:N_QUOTED_REPLY])
    filler_ids = set([i for i in idx if i not in html_ids and i not in quote_ids][:N_FILLER_NOISE])
    for i, (t, _) in enumerate(base):
        if i in filler_ids:
            t["body"] = gen.add_filler(t["body"])
        if i in html_ids:
            t["body"] = gen.add_html(t["body"])
        if i in quote_ids:
            when = dt.datetime.strptime(t["created_at"], "%Y-%m-%dT%H:%M:%SZ")
            first = t["customer_name"].split(" ")[0]
            t["body"] = gen.add_quoted_reply(t["body"], when, first)

    # duplicates: distinct sources for each kind
    sources = rng.sample(range(len(base)), N_EXACT_DUP + N_SPACE_CASE_DUP + N_NEAR_DUP)
    exact_src = sources[:N_EXACT_DUP]
    space_src = sources[N_EXACT_DUP:N_EXACT_DUP + N_SPACE_CASE_DUP]
    near_src = sources[N_EXACT_DUP + N_SPACE_CASE_DUP:]

    def later(t: dict) -> str:
        when = dt.datetime.strptime(t["created_at"], "%Y-%m-%dT%H:%M:%SZ")
        when += dt.timedelta(minutes=rng.randint(20, 60 * 24 * 9))
        return when.strftime("%Y-%m-%dT%H:%M:%SZ")

    rows: list[dict] = []
    kind: dict[int, str] = {}
    for t, _ in base:
        rows.append(t)
    for i in exact_src:
        d = dict(base[i][0])
        d["created_at"] = later(d)
        d["_kind"] = "exact_dup"
        rows.append(d)
    for i in space_src:
        d = gen.space_case_variant(base[i][0])
        d["created_at"] = later(d)
        d["_kind"] = "space_case_dup"
        rows.append(d)
    for i in near_src:
        d = dict(base[i][0])
        d["body"] = gen.near_dup(d["body"])
        assert key_of(d) not in seen
        d["created_at"] = later(d)
        d["_kind"] = "near_dup"
        rows.append(d)
    dup_source_objs = {id(base[i][0]) for i in sources}
    rows.sort(key=lambda t: t["created_at"])

    # ticket ids: increasing with time, with small gaps like a real tracker
    number = 10001
    for t in rows:
        t["ticket_id"] = f"AUR-{number}"
        number += rng.choice([1, 1, 1, 2, 3])

    # bad lines: only on plain base tickets (not duplicate sources or copies)
    lines: list[str] = []
    bad_at: dict[int, str] = {}
    wanted = dict(BAD_LINES)
    for pos, t in enumerate(rows, start=1):
        reason = wanted.get(pos)
        if reason and ("_kind" in t or id(t) in dup_source_objs):
            wanted[pos + 1] = reason  # nudge to the next plain ticket
            reason = None
        out = {k: t[k] for k in FIELDS}
        if reason == "malformed_json":
            full = json.dumps(out, ensure_ascii=False)
            cut = full.index('"body": ') + 40
            lines.append(full[:cut])
        elif reason == "empty_body":
            out["body"] = ""
            lines.append(json.dumps(out, ensure_ascii=False))
        elif reason == "missing_body":
            del out["body"]
            lines.append(json.dumps(out, ensure_ascii=False))
        elif reason == "json_array":
            lines.append(json.dumps(list(out.values()), ensure_ascii=False))
        else:
            lines.append(json.dumps(out, ensure_ascii=False))
        if reason:
            bad_at[pos] = reason
    (HERE / "tickets.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")

    # CSV: further tickets after the JSONL period, ids continuing
    csv_rows = []
    while len(csv_rows) < N_CSV:
        t, _ = gen.ticket(random_time(rng, dt.datetime(2026, 11, 1), dt.datetime(2026, 11, 20)))
        if key_of(t) in seen:
            continue
        seen.add(key_of(t))
        csv_rows.append(t)
    csv_rows.sort(key=lambda t: t["created_at"])
    for t in csv_rows:
        t["ticket_id"] = f"AUR-{number}"
        number += rng.choice([1, 1, 2])
    with open(HERE / "tickets.csv", "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(csv_rows)

    counts = {k: sum(1 for t in rows if t.get("_kind") == k)
              for k in ("exact_dup", "space_case_dup", "near_dup")}
    print(f"tickets.jsonl: {len(lines)} lines; bad lines: "
          + ", ".join(f"{pos} ({why})" for pos, why in sorted(bad_at.items())))
    print(f"duplicates: {counts}; tickets.csv: {len(csv_rows)} rows")


if __name__ == "__main__":
    main()
